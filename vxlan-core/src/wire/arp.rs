//! ARP and RARP for Ethernet/IPv4 (RFC 826, RFC 903).
//!
//! Hypervisors announce a live-migrated VM with a gratuitous ARP or a RARP
//! request; [`ArpRepr::announced_mac`] tells a bridge which MAC just moved.
//!
//! ```
//! use core::net::Ipv4Addr;
//! use vxlan_core::wire::{ArpOperation, ArpPacket, ArpRepr, MacAddr};
//!
//! let garp = ArpRepr {
//!     operation: ArpOperation::Request,
//!     sender_mac: MacAddr([2, 0, 0, 0, 0, 7]),
//!     sender_ip: Ipv4Addr::new(10, 0, 0, 7),
//!     target_mac: MacAddr::ZERO,
//!     target_ip: Ipv4Addr::new(10, 0, 0, 7),
//! };
//! let mut buf = [0u8; 28];
//! garp.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
//! let parsed = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap();
//! assert!(parsed.is_gratuitous());
//! assert_eq!(parsed.announced_mac(), Some(MacAddr([2, 0, 0, 0, 0, 7])));
//! ```

use core::net::Ipv4Addr;

use super::{check, read_u16, write_u16, Error, EtherType, MacAddr, Result};

mod field {
    use core::ops::Range;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;

/// The ARP operation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// 1: who has `target_ip`?
    Request,
    /// 2: `sender_ip` is at `sender_mac`.
    Reply,
    /// 3: RARP request (what QEMU/KVM and VMware send after a migration).
    ReverseRequest,
    /// 4: RARP reply.
    ReverseReply,
    /// Any other code.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            3 => ArpOperation::ReverseRequest,
            4 => ArpOperation::ReverseReply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(op: ArpOperation) -> u16 {
        match op {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::ReverseRequest => 3,
            ArpOperation::ReverseReply => 4,
            ArpOperation::Unknown(other) => other,
        }
    }
}

/// A view of an ARP or RARP packet.
#[derive(Debug, Clone, Copy)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer after checking its length.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the fixed Ethernet/IPv4 layout fits. Other hardware or
    /// protocol types are rejected by [`ArpRepr::parse`], not here.
    pub fn check_len(&self) -> Result<()> {
        check(self.buffer.as_ref(), PACKET_LEN)
    }

    /// Hardware type (1 for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }
    /// Protocol type (0x0800 for IPv4).
    pub fn protocol_type(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::PTYPE))
    }
    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    /// Operation.
    pub fn operation(&self) -> ArpOperation {
        read_u16(self.buffer.as_ref(), field::OPER).into()
    }
    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SHA])
    }
    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        ipv4_at(self.buffer.as_ref(), field::SPA.start)
    }
    /// Target hardware address.
    pub fn target_mac(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::THA])
    }
    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        ipv4_at(self.buffer.as_ref(), field::TPA.start)
    }
}

fn ipv4_at(buf: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(buf[at], buf[at + 1], buf[at + 2], buf[at + 3])
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes the Ethernet/IPv4 type fields.
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        write_u16(b, field::HTYPE, HTYPE_ETHERNET);
        write_u16(b, field::PTYPE, EtherType::IPV4.0);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }
    /// Sets the operation.
    pub fn set_operation(&mut self, op: ArpOperation) {
        write_u16(self.buffer.as_mut(), field::OPER, op.into());
    }
    /// Sets the sender hardware address.
    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac.0);
    }
    /// Sets the sender protocol address.
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&ip.octets());
    }
    /// Sets the target hardware address.
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac.0);
    }
    /// Sets the target protocol address.
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&ip.octets());
    }
}

/// The meaning of an Ethernet/IPv4 ARP or RARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Operation.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Reads a checked packet; anything but Ethernet/IPv4 is
    /// [`Error::Unsupported`].
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET
            || packet.protocol_type() != EtherType::IPV4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            sender_mac: packet.sender_mac(),
            sender_ip: packet.sender_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        })
    }

    /// Bytes [`ArpRepr::emit`] writes (28).
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet.
    ///
    /// # Panics
    /// When the buffer is shorter than 28 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_ethernet_ipv4();
        packet.set_operation(self.operation);
        packet.set_sender_mac(self.sender_mac);
        packet.set_sender_ip(self.sender_ip);
        packet.set_target_mac(self.target_mac);
        packet.set_target_ip(self.target_ip);
    }

    /// A gratuitous ARP: a request or reply whose sender and target IP are
    /// the same (RFC 5227 section 3), announcing the sender's binding.
    pub fn is_gratuitous(&self) -> bool {
        matches!(self.operation, ArpOperation::Request | ArpOperation::Reply)
            && self.sender_ip == self.target_ip
            && !self.sender_ip.is_unspecified()
    }

    /// The MAC a hypervisor announces after a migration: the sender of a
    /// gratuitous ARP, or the source of a RARP request (whose sender and
    /// target hardware addresses are both the VM's).
    pub fn announced_mac(&self) -> Option<MacAddr> {
        match self.operation {
            _ if self.is_gratuitous() => Some(self.sender_mac),
            ArpOperation::ReverseRequest | ArpOperation::ReverseReply => Some(self.sender_mac),
            _ => None,
        }
    }

    /// The reply an ARP proxy sends to this request when `ip` is at `mac`.
    pub fn reply_for(&self, mac: MacAddr) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: mac,
            sender_ip: self.target_ip,
            target_mac: self.sender_mac,
            target_ip: self.sender_ip,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Request: who has 192.168.1.1? tell 192.168.1.2 (02:00:00:00:00:02).
    static REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype, ptype, hlen, plen, oper
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 192, 168, 1, 2, // sha, spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 168, 1, 1, // tha, tpa
    ];

    fn request_repr() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            sender_ip: Ipv4Addr::new(192, 168, 1, 2),
            target_mac: MacAddr::ZERO,
            target_ip: Ipv4Addr::new(192, 168, 1, 1),
        }
    }

    #[test]
    fn deconstruct() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), EtherType::IPV4);
        assert_eq!(p.operation(), ArpOperation::Request);
        assert_eq!(p.sender_ip(), Ipv4Addr::new(192, 168, 1, 2));
        assert_eq!(p.target_ip(), Ipv4Addr::new(192, 168, 1, 1));
    }

    #[test]
    fn construct_and_parse() {
        let mut buf = [0u8; 28];
        request_repr().emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&REQUEST[..]).unwrap()).unwrap();
        assert_eq!(repr, request_repr());
        assert!(!repr.is_gratuitous());
        assert_eq!(repr.announced_mac(), None);
        let reply = repr.reply_for(MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(reply.operation, ArpOperation::Reply);
        assert_eq!(reply.target_mac, repr.sender_mac);
        assert_eq!(reply.sender_ip, repr.target_ip);
    }

    #[test]
    fn rarp_announces() {
        // QEMU's announce: RARP request, sha = tha = the VM's MAC, IPs zero.
        let vm = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        let rarp = ArpRepr {
            operation: ArpOperation::ReverseRequest,
            sender_mac: vm,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_mac: vm,
            target_ip: Ipv4Addr::UNSPECIFIED,
        };
        let mut buf = [0u8; 28];
        rarp.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[6..8], &[0, 3]);
        let parsed = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap();
        assert!(!parsed.is_gratuitous());
        assert_eq!(parsed.announced_mac(), Some(vm));
    }

    #[test]
    fn truncated_and_malformed() {
        assert!(matches!(
            ArpPacket::new_checked(&REQUEST[..27]),
            Err(Error::Truncated { .. })
        ));
        let mut other_hw = REQUEST;
        other_hw[1] = 6; // IEEE 802 networks
        let p = ArpPacket::new_checked(&other_hw[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p), Err(Error::Unsupported));
        let mut bad_plen = REQUEST;
        bad_plen[5] = 16;
        let p = ArpPacket::new_checked(&bad_plen[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p), Err(Error::Unsupported));
    }

    proptest! {
        #[test]
        fn round_trip(op in any::<u16>(), sm in any::<[u8; 6]>(), si in any::<[u8; 4]>(),
                      tm in any::<[u8; 6]>(), ti in any::<[u8; 4]>()) {
            let repr = ArpRepr {
                operation: op.into(),
                sender_mac: MacAddr(sm),
                sender_ip: si.into(),
                target_mac: MacAddr(tm),
                target_ip: ti.into(),
            };
            let mut buf = [0u8; 28];
            repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
            let parsed = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap();
            prop_assert_eq!(parsed, repr);
        }
    }
}
