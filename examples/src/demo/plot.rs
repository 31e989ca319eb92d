//! The goodput plot, as hand-written SVG.

use std::fmt::Write as _;

use super::Report;

pub(super) fn svg(r: &Report) -> String {
    let (w, h) = (900.0, 420.0);
    let (l, rgt, top, bot) = (70.0, 20.0, 40.0, 60.0);
    let pw = w - l - rgt;
    let ph = h - top - bot;
    let t_max = r.finished_ms.max(1.0);
    let y_max = (r.options.rate_mbit.max(1) as f64 * 1.1)
        .max(r.goodput.iter().map(|s| s.mbit_s).fold(0.0, f64::max) * 1.05);
    let x = |t: f64| l + t / t_max * pw;
    let y = |v: f64| top + ph - v / y_max * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let o = r.options;
    let title = format!(
        "Goodput at the server VM during live migration ({}{}{})",
        o.mode.as_str(),
        if o.announce { "" } else { ", no announce" },
        if o.flap { ", flapping" } else { "" }
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{title}</text>"#,
        w / 2.0
    );
    for (i, &(a, b)) in r.pauses.iter().enumerate() {
        let (xa, xb) = (x(a), x(b).max(x(a) + 1.0));
        let _ = writeln!(
            s,
            r##"<rect x="{xa:.1}" y="{top}" width="{:.1}" height="{ph}" fill="#f4b183" opacity="0.5"/>"##,
            xb - xa
        );
        if i == 0 {
            let _ = writeln!(
                s,
                // Inside the shaded band when it is wide enough.
                r##"<text x="{0:.1}" y="{1:.1}" font-size="11" fill="#a0522d" text-anchor="{2}"><tspan x="{0:.1}">VM paused</tspan><tspan x="{0:.1}" dy="13">(stop-and-copy)</tspan></text>"##,
                if xb - xa > 90.0 {
                    (xa + xb) / 2.0
                } else {
                    xb + 4.0
                },
                top + 14.0,
                if xb - xa > 90.0 { "middle" } else { "start" }
            );
        }
    }
    for (i, &t) in r.announces.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1}" stroke="#2e7d32" stroke-dasharray="4 3"/>"##,
            x(t),
            top + ph
        );
        if i == 0 {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#2e7d32">RARP from the new host</text>"##,
                x(t) + 4.0,
                top + 30.0
            );
        }
    }
    // The interruption as a bracket under the curve.
    let (ia, ib) = (
        x(r.interruption_from_ms),
        x(r.interruption_from_ms + r.interruption_ms),
    );
    let yb = top + ph - 20.0;
    let _ = writeln!(
        s,
        r##"<path d="M{ia:.1},{:.1} V{yb:.1} H{ib:.1} V{:.1}" stroke="#c00000" fill="none"/>"##,
        yb - 6.0,
        yb - 6.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" fill="#c00000" font-size="11" text-anchor="{}">no data for {:.0} ms</text>"##,
        if ib - ia > 160.0 {
            (ia + ib) / 2.0
        } else {
            ib + 4.0
        },
        if ib - ia > 160.0 { yb - 4.0 } else { yb - 2.0 },
        if ib - ia > 160.0 { "middle" } else { "start" },
        r.interruption_ms
    );
    // Axes and ticks.
    let _ = writeln!(
        s,
        r#"<path d="M{l},{top} V{} H{}" stroke="black" fill="none"/>"#,
        top + ph,
        l + pw
    );
    // Long runs are labelled in seconds.
    let (scale, unit) = if t_max > 20_000.0 {
        (1000.0, "s")
    } else {
        (1.0, "ms")
    };
    for t in ticks(t_max / scale).into_iter().map(|t| t * scale) {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#ddd"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
            x(t),
            top,
            top + ph,
            top + ph + 16.0,
            fmt_tick(t / scale)
        );
    }
    for v in ticks(y_max) {
        let _ = writeln!(
            s,
            r##"<line x1="{0}" x2="{1}" y1="{2:.1}" y2="{2:.1}" stroke="#ddd"/><text x="{3}" y="{4:.1}" text-anchor="end">{5}</text>"##,
            l,
            l + pw,
            y(v),
            l - 6.0,
            y(v) + 4.0,
            fmt_tick(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">simulated time ({unit})</text>"#,
        l + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">goodput (Mbit/s)</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    // The curve: a step line over the bins.
    let mut d = String::new();
    let bin = r.goodput.get(1).map_or(10.0, |s| s.t_ms);
    for (i, sm) in r.goodput.iter().enumerate() {
        let cmd = if i == 0 { 'M' } else { 'L' };
        let _ = write!(
            d,
            "{cmd}{:.1},{:.1} L{:.1},{:.1} ",
            x(sm.t_ms),
            y(sm.mbit_s),
            x((sm.t_ms + bin).min(t_max)),
            y(sm.mbit_s)
        );
    }
    let _ = writeln!(
        s,
        r##"<path d="{d}" stroke="#1f4e79" stroke-width="1.5" fill="none"/>"##
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" text-anchor="end" font-size="11" fill="#555">{} of {} bytes verified; {} TCP retransmissions; {} resets</text>"##,
        l + pw,
        h - 4.0,
        r.bytes_verified,
        r.bytes_sent,
        r.retransmissions,
        r.tcp_resets
    );
    s.push_str("</svg>\n");
    s
}

pub(super) fn ticks(max: f64) -> Vec<f64> {
    let raw = max / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(mag * 10.0);
    let mut v = Vec::new();
    let mut t = 0.0;
    while t <= max + 1e-9 {
        v.push(t);
        t += step;
    }
    v
}

pub(super) fn fmt_tick(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
