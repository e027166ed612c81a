//! The operator in a cluster full of Secrets no app references (Helm releases, tokens of other
//! tools): its memory stays bounded, and the one Secret an app references still rolls its pods.

mod support;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::{Cluster, from};

/// Foreign Secrets created before the operator starts, and the size of each one's data.
const FOREIGN: usize = 5_000;
const FOREIGN_BYTES: usize = 100 * 1024;
/// The chart's memory limit (`resources.limits.memory`), and the share of it the operator may use.
const CHART_LIMIT_MIB: u64 = 256;
const ALLOWED_MIB: u64 = CHART_LIMIT_MIB / 2;

/// `VmRSS` and `VmHWM` (the peak) of process `pid`, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test]
async fn five_thousand_foreign_secrets_leave_the_operator_small_and_referenced_ones_still_roll() {
    let cluster = Cluster::start().await;
    let secrets: Api<Secret> = Api::default_namespaced(cluster.client.clone());
    let payload = "x".repeat(FOREIGN_BYTES);
    let started = std::time::Instant::now();
    futures::stream::iter(0..FOREIGN)
        .map(|i| {
            let secrets = secrets.clone();
            let secret: Secret = from(json!({
                "metadata": {"name": format!("sh.helm.release.v1.foreign-{i}.v1"),
                             "labels": {"owner": "helm"}},
                "type": "helm.sh/release.v1",
                "stringData": {"release": payload},
            }));
            async move { secrets.create(&PostParams::default(), &secret).await }
        })
        .buffer_unordered(32)
        .try_for_each(|_| async { Ok(()) })
        .await
        .unwrap();
    println!(
        "created {FOREIGN} Secrets of {} KiB in {:.1?}",
        FOREIGN_BYTES / 1024,
        started.elapsed()
    );
    let operator = cluster.start_operator("operator", 18080, &[]).await;
    support::apply_app_restarted_by(&cluster, "keyed", "api-keys").await;
    let first = support::secrets_checksum(&cluster, "keyed").await;
    support::rotate_and_see_the_roll(&cluster, "api-keys", "keyed", &first).await;

    let (rss, peak) = rss_kib(operator.pid());
    println!(
        "operator with {FOREIGN} foreign Secrets of {} KiB: VmRSS {} MiB, peak VmHWM {} MiB",
        FOREIGN_BYTES / 1024,
        rss / 1024,
        peak / 1024
    );
    assert!(
        peak / 1024 < ALLOWED_MIB,
        "the operator peaked at {} MiB, more than {ALLOWED_MIB} MiB (half the chart's limit)",
        peak / 1024
    );
}
