//! The dev stack's signed demo project.

use voxseal_core::project::config::ProjectConfig;
use voxseal_localstack::devstack::{DevStack, DevStackOptions};

/// `voxseal dev-stack --max-take-s 600` (benchmarks of long takes): the signed config carries it;
/// without it, the project default stays.
#[tokio::test]
async fn the_demo_projects_longest_take_can_be_raised() {
    for (max, want) in [(Some(600.0), 600.0), (None, 120.0)] {
        let dir = tempfile::tempdir().unwrap();
        let opts = DevStackOptions {
            max_take_s: max,
            ..DevStackOptions::ephemeral(dir.path())
        };
        let stack = DevStack::start(opts).await.unwrap();
        let text = std::fs::read_to_string(&stack.info.project_path).unwrap();
        let config = ProjectConfig::parse(&text, "dev stack").unwrap();
        assert_eq!(config.capture.max_take_s, want);
    }
}
