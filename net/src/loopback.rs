//! Loopback-only pod networking: the runtime's fresh namespace already has `lo` up, and
//! that is all a pod gets. Its address, inside its own namespace, is 127.0.0.1; the proxy
//! reaches it by opening sockets in that namespace.

use super::{NetError, PodNetwork};
use coracle_config::core::Pod;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// The address every loopback-only pod reports (each in its own namespace).
pub const LOOPBACK_POD_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Pods with loopback only (network mode `none`, or CNI with no plugins installed).
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopbackOnly;

impl PodNetwork for LoopbackOnly {
    fn setup(&self, _pod: &Pod, _netns: &Path) -> Result<Option<IpAddr>, NetError> {
        Ok(Some(LOOPBACK_POD_IP))
    }

    fn teardown(&self, _pod: &Pod, _netns: &Path) -> Result<(), NetError> {
        Ok(())
    }
}
