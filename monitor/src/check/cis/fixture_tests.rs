//! Fixture tests of the CIS checks: Docker's state files, daemon.json, swarm state and image
//! configs laid out under a temporary root.

use crate::check::tests::{fixture, outcome};
use crate::check::{run, Host, Profile, Selection, Status};
use serde_json::json;

const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ID_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// The outcome of a per-container check for one container.
fn for_container(h: &Host, id: &str, container: &str) -> crate::check::Outcome {
    let sel = Selection { only: vec![id.into()], ..Default::default() };
    run(h, &sel)
        .unwrap()
        .into_iter()
        .find(|f| matches!(&f.subject, crate::check::Subject::Container { name, .. } if name == container))
        .unwrap_or_else(|| panic!("{id} for {container}"))
        .outcome
}

fn containers() -> Host {
    let risky_config = json!({
        "ID": ID_A, "Name": "/risky", "Image": "sha256:1", "Config": {"User": "0:0", "Image": "app:1", "Healthcheck": {"Test": ["NONE"]}},
        "State": {"Running": false, "StartedAt": "2026-01-01T00:00:00Z"},
        "MountPoints": {
            "/host": {"Source": "/", "Destination": "/host", "RW": true, "Type": "bind", "Propagation": "rshared"},
            "/r": {"Source": "/run", "Destination": "/r", "RW": false, "Type": "bind", "Propagation": "rprivate"},
            "/data": {"Source": "/var/lib/docker/volumes/v/_data", "Destination": "/data", "RW": true, "Type": "volume", "Name": "v"}
        },
        "AppArmorProfile": "", "SeccompProfile": "unconfined"
    });
    let risky_host = json!({
        "NetworkMode": "host", "UTSMode": "host", "IpcMode": "host", "UsernsMode": "host", "PidMode": "",
        "Privileged": false, "CapAdd": ["CAP_NET_ADMIN", "SYS_PTRACE"], "CapDrop": null,
        "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
        "PortBindings": {"443/tcp": [{"HostIp": "", "HostPort": "443"}]},
        "Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}],
        "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}], "CgroupParent": "/custom",
        "SecurityOpt": ["apparmor:unconfined"], "PidsLimit": 0, "Memory": 0, "CpuShares": 1024
    });
    let calm_config = json!({
        "ID": ID_B, "Name": "/calm", "Config": {"User": "app", "Image": "app:1", "Healthcheck": {"Test": ["CMD", "true"]}},
        "State": {"Running": false, "StartedAt": "0001-01-01T00:00:00Z"}, "MountPoints": null
    });
    let calm_host = json!({
        "Binds": ["/var/run/docker.sock:/sock:ro", "/srv/data:/data:rshared"], "NetworkMode": "app-net",
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
        "PortBindings": {"8080/tcp": [{"HostIp": "10.0.0.5", "HostPort": "8080"}]},
        "CpuQuota": 50000, "Memory": 1073741824, "PidsLimit": 100, "ReadonlyRootfs": true,
        "SecurityOpt": ["no-new-privileges:true"]
    });
    let a = format!("/var/lib/docker/containers/{ID_A}");
    let b = format!("/var/lib/docker/containers/{ID_B}");
    fixture(
        "cis-containers",
        &[
            ("/usr/sbin/dockerd", ""),
            ("/sys/module/apparmor/parameters/enabled", "Y\n"),
            (&format!("{a}/config.v2.json"), &risky_config.to_string()),
            (&format!("{a}/hostconfig.json"), &risky_host.to_string()),
            (&format!("{b}/config.v2.json"), &calm_config.to_string()),
            (&format!("{b}/hostconfig.json"), &calm_host.to_string()),
            // Being created: no config yet, not a container.
            ("/var/lib/docker/containers/cccc/hostconfig.json", "{}"),
        ],
    )
}

#[test]
fn per_container_recommendations_from_state_files() {
    let h = containers();
    let o = |id, c| for_container(&h, id, c);
    let status = |id, c| o(id, c).status;
    assert_eq!(h.containers().unwrap().len(), 2);
    assert_eq!(h.containers().unwrap()[0].state, "exited");
    assert_eq!(h.containers().unwrap()[1].state, "created");

    assert_eq!(status("4.1", "risky"), Status::Fail, "user 0:0 is root");
    assert_eq!(status("4.1", "calm"), Status::Pass);
    assert!(o("5.2", "risky").evidence[0].contains("unconfined"));
    assert_eq!(status("5.2", "calm"), Status::Pass);
    assert_eq!(status("5.3", "risky"), Status::NotApplicable, "no SELinux in the fixture");
    let caps = o("5.4", "risky");
    assert_eq!(caps.status, Status::Fail);
    assert_eq!(caps.evidence[0], "capabilities added: NET_ADMIN, SYS_PTRACE");
    let sensitive = o("5.6", "risky");
    assert_eq!(
        sensitive.evidence,
        vec!["host / mounted at /host (read-write)"],
        "a volume and /run are not 5.6's"
    );
    assert_eq!(status("5.6", "calm"), Status::Pass);
    assert_eq!(status("5.7", "risky"), Status::NotApplicable, "exited: no processes");
    assert!(o("5.8", "risky").evidence[0].contains("0.0.0.0:443 -> 443/tcp"));
    assert_eq!(status("5.8", "calm"), Status::Pass);
    assert_eq!(status("5.9", "risky"), Status::Warn);
    for id in ["5.10", "5.17", "5.21", "5.31"] {
        assert_eq!(status(id, "risky"), Status::Fail, "{id}");
        assert_eq!(status(id, "calm"), Status::Pass, "{id}");
    }
    assert_eq!(status("5.16", "risky"), Status::Pass);
    assert_eq!(status("5.11", "calm"), Status::Pass);
    assert_eq!(
        o("5.12", "risky").evidence,
        vec!["no CPU limit or share set"],
        "1024 shares is the default"
    );
    assert_eq!(o("5.12", "calm").evidence, vec!["--cpu-quota 50000"]);
    assert_eq!(status("5.13", "calm"), Status::Pass);
    assert_eq!(status("5.14", "risky"), Status::Fail);
    assert_eq!(status("5.14", "calm"), Status::Pass);
    assert_eq!(status("5.15", "risky"), Status::Fail);
    assert_eq!(status("5.15", "calm"), Status::Pass);
    assert_eq!(status("5.18", "risky"), Status::Warn);
    assert_eq!(status("5.19", "risky"), Status::Pass);
    assert_eq!(status("5.19", "calm"), Status::Warn);
    assert!(o("5.20", "risky").evidence[0].contains("rshared"));
    assert!(
        o("5.20", "calm").evidence[0].contains("/srv/data"),
        "a created container's binds: {:?}",
        o("5.20", "calm").evidence
    );
    assert_eq!(status("5.22", "risky"), Status::Fail, "config.v2.json SeccompProfile unconfined");
    assert_eq!(status("5.25", "risky"), Status::Warn);
    assert_eq!(status("5.26", "risky"), Status::Fail);
    assert_eq!(status("5.26", "calm"), Status::Pass, "no-new-privileges:true");
    assert_eq!(status("5.27", "risky"), Status::Fail, "Healthcheck NONE");
    assert_eq!(status("5.27", "calm"), Status::Pass);
    assert_eq!(status("5.29", "risky"), Status::Fail);
    assert_eq!(status("5.29", "calm"), Status::Pass);
    assert_eq!(status("5.30", "risky"), Status::Pass, "host network is not the default bridge");
    let sock = o("5.32", "calm");
    assert_eq!(sock.status, Status::Fail);
    assert!(sock.evidence[0].starts_with("host /var/run/docker.sock mounted at /sock (read-only)"));
    assert_eq!(status("5.32", "risky"), Status::Fail, "/run holds the socket");
}

#[test]
fn daemon_configuration_from_daemon_json() {
    let json = json!({
        "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"], "tlsverify": true, "tlscacert": "/etc/docker/ca.pem",
        "tlscert": "/etc/docker/cert.pem", "storage-driver": "aufs", "storage-opts": ["dm.basesize=20G"],
        "authorization-plugins": ["authz"], "log-driver": "syslog", "seccomp-profile": "unconfined", "experimental": true,
        "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}}, "cgroup-parent": "/docker"
    });
    let h = fixture(
        "cis-daemon",
        &[
            ("/usr/sbin/dockerd", ""),
            ("/etc/docker/daemon.json", &json.to_string()),
            ("/etc/docker/ca.pem", "x"),
            ("/etc/docker/cert.pem", "x"),
        ],
    );
    let status = |id| outcome(&h, id).status;
    let tls = outcome(&h, "2.7");
    assert_eq!(tls.status, Status::Fail);
    assert!(tls.evidence.last().unwrap().contains("not set: tlskey"), "{:?}", tls.evidence);
    assert_eq!(status("2.6"), Status::Fail);
    assert_eq!(status("2.8"), Status::Pass);
    assert_eq!(status("2.10"), Status::Warn);
    assert_eq!(status("2.11"), Status::Warn);
    assert_eq!(status("2.12"), Status::Pass);
    assert_eq!(status("2.13"), Status::Pass);
    assert_eq!(status("2.17"), Status::Fail);
    assert_eq!(status("2.18"), Status::Fail);
    assert_eq!(outcome(&h, "2.1").status, Status::Unknown, "dockerd is not running in a fixture");
    // The files the TLS settings name: modes judged, a missing key not applicable.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(h.path("/etc/docker/ca.pem"), std::fs::Permissions::from_mode(0o644))
        .unwrap();
    std::fs::set_permissions(
        h.path("/etc/docker/cert.pem"),
        std::fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    assert_eq!(status("3.10"), Status::Fail);
    assert!(outcome(&h, "3.10").evidence[0].contains("mode 0644"));
    assert_eq!(status("3.12"), Status::Pass);
    assert_eq!(status("3.14"), Status::NotApplicable);
    // Unreadable configuration: unknown, never a pass.
    let h = fixture(
        "cis-daemon-bad",
        &[("/usr/sbin/dockerd", ""), ("/etc/docker/daemon.json", "{not json")],
    );
    assert_eq!(outcome(&h, "2.3").status, Status::Unknown);
    assert_eq!(outcome(&h, "DOCKER-ICC").status, Status::Unknown);
    // Docker not installed: not applicable.
    assert_eq!(outcome(&fixture("cis-nodocker", &[]), "2.3").status, Status::NotApplicable);
}

#[test]
fn data_root_and_images() {
    let image = json!({
        "config": {"Env": ["PATH=/bin", "DB_PASSWORD=hunter2"], "Healthcheck": {"Test": ["CMD-SHELL", "true"]}},
        "history": [{"created_by": "/bin/sh -c #(nop) ADD file:abc in / "}, {"created_by": "/bin/sh -c apt-get update"}, {"created_by": "/bin/sh -c apt-get update && apt-get install -y x"}]
    });
    let hex = "d".repeat(64);
    let repos = json!({"Repositories": {"app": {"app:1": format!("sha256:{hex}"), "app@sha256:00": format!("sha256:{hex}")}}});
    let h = fixture(
        "cis-images",
        &[
            ("/usr/sbin/dockerd", ""),
            ("/etc/docker/daemon.json", r#"{"data-root": "/srv/docker/"}"#),
            (
                &format!("/srv/docker/image/overlay2/imagedb/content/sha256/{hex}"),
                &image.to_string(),
            ),
            ("/srv/docker/image/overlay2/repositories.json", &repos.to_string()),
        ],
    );
    assert_eq!(h.docker().root, "/srv/docker");
    let images = h.images().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].names, vec!["app:1"], "digests are not names");
    let status = |id| outcome(&h, id).status;
    assert_eq!(status("4.6"), Status::Pass);
    let update = outcome(&h, "4.7");
    assert_eq!(update.status, Status::Warn);
    assert_eq!(update.evidence, vec!["history: /bin/sh -c apt-get update"]);
    assert_eq!(status("4.9"), Status::Warn);
    let secrets = outcome(&h, "4.10");
    assert_eq!(secrets.status, Status::Fail);
    assert_eq!(secrets.evidence, vec!["ENV DB_PASSWORD has a value (not shown)"]);
    assert!(!format!("{secrets:?}").contains("hunter2"));
    assert_eq!(status("5.5"), Status::NotApplicable, "no container under the data root");
}

#[test]
fn swarm_state() {
    let state = r#"{"LocalAddr":"10.0.0.5","ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"10.0.0.5:2377","DataPathAddr":""}"#;
    let h = fixture(
        "cis-swarm-manager",
        &[
            ("/usr/sbin/dockerd", ""),
            ("/var/lib/docker/swarm/docker-state.json", state),
            ("/var/lib/docker/swarm/raft/wal", ""),
        ],
    );
    assert_eq!(outcome(&h, "5.1").status, Status::Fail);
    assert!(outcome(&h, "5.1").evidence[0].contains("manager"));
    assert_eq!(outcome(&h, "7.2").status, Status::Fail);
    assert_eq!(outcome(&h, "7.9").status, Status::Fail);
    let review = outcome(&h, "7.1");
    assert_eq!(review.status, Status::Warn);
    assert!(review.reason.unwrap().contains("docker node ls"));
    let worker = fixture(
        "cis-swarm-worker",
        &[
            ("/usr/sbin/dockerd", ""),
            (
                "/var/lib/docker/swarm/docker-state.json",
                r#"{"ListenAddr":"10.0.0.6:2377","AdvertiseAddr":"10.0.0.6:2377","DataPathAddr":"192.168.0.6"}"#,
            ),
        ],
    );
    assert_eq!(outcome(&worker, "7.1").status, Status::NotApplicable);
    assert_eq!(outcome(&worker, "7.2").status, Status::Pass);
    assert_eq!(outcome(&worker, "7.9").status, Status::Pass);
    let none = fixture("cis-swarm-none", &[("/usr/sbin/dockerd", "")]);
    assert_eq!(outcome(&none, "5.1").status, Status::Pass);
    for id in ["7.1", "7.2", "7.3", "7.9"] {
        assert_eq!(outcome(&none, id).status, Status::NotApplicable, "{id}");
    }
}

#[test]
fn selection_by_profile_level_and_id() {
    let ids = |sel: Selection| sel.checks().unwrap().iter().map(|c| c.id).collect::<Vec<_>>();
    let cis = ids(Selection { profile: Profile::CisDocker, ..Default::default() });
    assert_eq!(cis.len(), 115);
    assert_eq!(cis[0], "DOCKER-PARTITION", "benchmark order: 1.1.1 first");
    assert_eq!(cis.last(), Some(&"CIS-7.9"));
    let l1 = ids(Selection { profile: Profile::CisDocker, level: Some(1), ..Default::default() });
    assert!(!l1.contains(&"DOCKER-USERNS") && l1.contains(&"DOCKER-ICC"));
    // A guide check stays in the guides' profile whatever the level.
    assert!(ids(Selection { level: Some(1), ..Default::default() }).contains(&"DOCKER-USERNS"));
    assert_eq!(
        ids(Selection { profile: Profile::HardeningGuides, ..Default::default() }).len(),
        29
    );
    let only = |s: &[&str]| {
        ids(Selection { only: s.iter().map(|x| x.to_string()).collect(), ..Default::default() })
    };
    assert_eq!(only(&["5.4"]), vec!["CIS-5.4"]);
    assert_eq!(only(&["cis-5.4"]), vec!["CIS-5.4"]);
    assert_eq!(only(&["2.2"]), vec!["DOCKER-ICC"]);
    assert_eq!(only(&["1.1."]).len(), 18);
    assert_eq!(only(&["CIS-7."]).len(), 9);
    assert_eq!(only(&["CIS-"]).len(), 115);
    assert!(Selection { only: vec!["5.99".into()], ..Default::default() }.checks().is_err());
}
