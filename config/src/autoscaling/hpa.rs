//! `autoscaling/v2.HorizontalPodAutoscaler`, the stored form, and `autoscaling/v1`'s shape
//! (`targetCPUUtilizationPercentage`) with conversions both ways.

use crate::meta::{Condition, ObjectMeta};
use crate::Quantity;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscaler {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: HpaSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HpaStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossVersionObjectReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaSpec {
    #[serde(default)]
    pub scale_target_ref: CrossVersionObjectReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default)]
    pub max_replicas: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HpaBehavior>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSpec {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricSource>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetricSource {
    pub name: String,
    pub target: MetricTarget,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTarget {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaBehavior {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<HpaScalingRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<HpaScalingRules>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaScalingRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<HpaScalingPolicy>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaScalingPolicy {
    #[serde(rename = "type")]
    pub type_: String,
    pub value: i32,
    pub period_seconds: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<String>,
    #[serde(default)]
    pub current_replicas: i32,
    #[serde(default)]
    pub desired_replicas: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub current_metrics: Vec<MetricStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetricStatus {
    pub name: String,
    pub current: MetricValueStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
}

/// `autoscaling/v1.HorizontalPodAutoscaler`: what `kubectl autoscale` up to 1.32 posts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerV1 {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: HpaSpecV1,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HpaStatusV1>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaSpecV1 {
    #[serde(default)]
    pub scale_target_ref: CrossVersionObjectReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default)]
    pub max_replicas: i32,
    #[serde(default, rename = "targetCPUUtilizationPercentage", skip_serializing_if = "Option::is_none")]
    pub target_cpu_utilization_percentage: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaStatusV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<String>,
    #[serde(default)]
    pub current_replicas: i32,
    #[serde(default)]
    pub desired_replicas: i32,
    #[serde(default, rename = "currentCPUUtilizationPercentage", skip_serializing_if = "Option::is_none")]
    pub current_cpu_utilization_percentage: Option<i32>,
}

impl HorizontalPodAutoscaler {
    /// The CPU utilization target in percent, if the autoscaler has one.
    pub fn cpu_target_utilization(&self) -> Option<i32> {
        self.spec.metrics.iter().find_map(|m| {
            let r = m.resource.as_ref()?;
            (m.type_ == "Resource" && r.name == "cpu" && r.target.type_ == "Utilization")
                .then_some(r.target.average_utilization)
                .flatten()
        })
    }

    /// The CPU utilization last observed, in percent.
    pub fn cpu_current_utilization(&self) -> Option<i32> {
        self.status.as_ref()?.current_metrics.iter().find_map(|m| {
            let r = m.resource.as_ref()?;
            (m.type_ == "Resource" && r.name == "cpu").then_some(r.current.average_utilization).flatten()
        })
    }

    /// The v1 view: the CPU target becomes `targetCPUUtilizationPercentage`; other metrics
    /// are not expressible in v1 and are left out, as the API server's conversion does
    /// (it keeps them in an annotation we do not need on one board).
    pub fn to_v1(&self) -> HorizontalPodAutoscalerV1 {
        HorizontalPodAutoscalerV1 {
            api_version: "autoscaling/v1".into(),
            kind: "HorizontalPodAutoscaler".into(),
            metadata: self.metadata.clone(),
            spec: HpaSpecV1 {
                scale_target_ref: self.spec.scale_target_ref.clone(),
                min_replicas: self.spec.min_replicas,
                max_replicas: self.spec.max_replicas,
                target_cpu_utilization_percentage: self.cpu_target_utilization(),
            },
            status: self.status.as_ref().map(|s| HpaStatusV1 {
                observed_generation: s.observed_generation,
                last_scale_time: s.last_scale_time.clone(),
                current_replicas: s.current_replicas,
                desired_replicas: s.desired_replicas,
                current_cpu_utilization_percentage: self.cpu_current_utilization(),
            }),
        }
    }
}

impl HorizontalPodAutoscalerV1 {
    /// Decodes one from JSON with the object model's decoder (`tracked`; the error names the
    /// field's path). Not generic, so the crates above share this one copy of the decoding
    /// code instead of each instantiating serde's for their own deserializer.
    #[inline(never)]
    pub fn from_json(value: serde_json::Value) -> Result<HorizontalPodAutoscalerV1, crate::tracked::DecodeError> {
        crate::tracked::from_value(value)
    }

    /// The stored v2 form of a v1 autoscaler.
    pub fn to_v2(&self) -> HorizontalPodAutoscaler {
        let metrics = self
            .spec
            .target_cpu_utilization_percentage
            .map(|pct| {
                vec![MetricSpec {
                    type_: "Resource".into(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".into(),
                        target: MetricTarget {
                            type_: "Utilization".into(),
                            average_utilization: Some(pct),
                            ..Default::default()
                        },
                    }),
                }]
            })
            .unwrap_or_default();
        HorizontalPodAutoscaler {
            api_version: "autoscaling/v2".into(),
            kind: "HorizontalPodAutoscaler".into(),
            metadata: self.metadata.clone(),
            spec: HpaSpec {
                scale_target_ref: self.spec.scale_target_ref.clone(),
                min_replicas: self.spec.min_replicas,
                max_replicas: self.spec.max_replicas,
                metrics,
                behavior: None,
            },
            status: self.status.as_ref().map(|s| HpaStatus {
                observed_generation: s.observed_generation,
                last_scale_time: s.last_scale_time.clone(),
                current_replicas: s.current_replicas,
                desired_replicas: s.desired_replicas,
                current_metrics: s
                    .current_cpu_utilization_percentage
                    .map(|pct| {
                        vec![MetricStatus {
                            type_: "Resource".into(),
                            resource: Some(ResourceMetricStatus {
                                name: "cpu".into(),
                                current: MetricValueStatus { average_utilization: Some(pct), ..Default::default() },
                            }),
                        }]
                    })
                    .unwrap_or_default(),
                conditions: Vec::new(),
            }),
        }
    }
}
