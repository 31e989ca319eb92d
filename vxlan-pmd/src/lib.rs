//! vxlan-pmd (work in progress).
