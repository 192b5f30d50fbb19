//! Every event the node records, in one table: the kubelet's reason and its type. Call
//! sites name a [`Reason`]; the strings and Normal/Warning are chosen here only.

use coracle_config::meta::ObjectReference;
use coracle_store::events::{EventType, Recorder};

/// Why the node records an event about a pod or one of its containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The container's image is present (the kubelet's "already present on machine").
    Pulled,
    Created,
    Started,
    /// A container is being stopped: pod deletion, a failed probe or hook, a changed image.
    Killing,
    /// A container could not be created or started, or its image is missing.
    Failed,
    /// A crashed container waits before its restart.
    BackOff,
    /// A probe failed.
    Unhealthy,
    FailedPreStopHook,
    FailedPostStartHook,
    /// `activeDeadlineSeconds` passed.
    DeadlineExceeded,
    /// The pod's directory, cgroup, sandbox or network could not be set up.
    FailedCreatePodSandBox,
    /// The pod's network or sandbox could not be torn down.
    FailedKillPod,
    /// `envFrom` named keys that are not valid variable names: skipped, as the kubelet does.
    InvalidEnvironmentVariableNames,
}

impl Reason {
    /// The reason as the kubelet spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Pulled => "Pulled",
            Reason::Created => "Created",
            Reason::Started => "Started",
            Reason::Killing => "Killing",
            Reason::Failed => "Failed",
            Reason::BackOff => "BackOff",
            Reason::Unhealthy => "Unhealthy",
            Reason::FailedPreStopHook => "FailedPreStopHook",
            Reason::FailedPostStartHook => "FailedPostStartHook",
            Reason::DeadlineExceeded => "DeadlineExceeded",
            Reason::FailedCreatePodSandBox => "FailedCreatePodSandBox",
            Reason::FailedKillPod => "FailedKillPod",
            Reason::InvalidEnvironmentVariableNames => "InvalidEnvironmentVariableNames",
        }
    }

    /// Normal or Warning, as the kubelet records this reason.
    pub fn event_type(self) -> EventType {
        match self {
            Reason::Pulled | Reason::Created | Reason::Started | Reason::Killing | Reason::DeadlineExceeded => {
                EventType::Normal
            }
            Reason::Failed
            | Reason::BackOff
            | Reason::Unhealthy
            | Reason::FailedPreStopHook
            | Reason::FailedPostStartHook
            | Reason::FailedCreatePodSandBox
            | Reason::FailedKillPod
            | Reason::InvalidEnvironmentVariableNames => EventType::Warning,
        }
    }
}

/// Records `reason` about `involved` (a pod, or one of its containers by `fieldPath`).
pub fn record(recorder: &Recorder, involved: &ObjectReference, reason: Reason, message: impl Into<String>) {
    recorder.record_ref(involved, reason.event_type(), reason.as_str(), message);
}
