//! The Kubernetes manifests of monitoring/ (the exporter's Deployment, the indexed Job of a
//! sharded sweep) are valid against the Kubernetes API's schemas: kubernetes-validate, which
//! bundles them (offline), installed by tests/support/kubernetes/install.sh.

use std::path::Path;
use std::process::Command;

#[test]
fn the_manifests_match_the_kubernetes_schemas() {
    let found = Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let why = "kubernetes-validate not installed (run tests/support/kubernetes/install.sh)";
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{why}: CI must validate"
        );
        eprintln!("SKIPPED: {why}");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring");
    for file in ["kubernetes.yaml", "sweep-job.yaml"] {
        // --strict: a field the schema does not know (a typo) is an error too.
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "--kubernetes-version", "1.33"])
            .arg(root.join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The Job runs the shard its pod is given.
    let job = std::fs::read_to_string(root.join("sweep-job.yaml")).unwrap();
    assert!(job.contains("completionMode: Indexed"));
    assert!(job.contains("--shard job-index/4") && job.contains("completions: 4"));
}
