//! CIS section 5, what isolates each container from the host: privileges and capabilities,
//! the host's namespaces, AppArmor/SELinux/seccomp and no-new-privileges, host paths, the
//! Docker socket, devices and mount propagation. One finding per container in Docker's
//! state, from its config.v2.json and hostconfig.json (what the container was created
//! with; a created or stopped container gets it when it starts).

use super::{cis, manual};
use crate::check::docker_state::Container;
use crate::check::{Check, Host, Outcome, Probe};

const G: &str = "cis-5 runtime";
const F: &str = "/var/lib/docker/containers";

pub const CHECKS: &[Check] = &[
    cis!("5.2", 1, Medium, G, F, "Ensure that, if applicable, an AppArmor Profile is enabled",
        "Run the container with the default AppArmor profile or its own (`--security-opt apparmor=PROFILE`), never apparmor=unconfined.", Probe::Container(apparmor)),
    cis!("5.3", 2, Medium, G, F, "Ensure that, if applicable, SELinux security options are set",
        "Run dockerd with --selinux-enabled and the container with its SELinux labels (never `--security-opt label=disable`).", Probe::Container(selinux)),
    cis!("5.4", 1, High, G, F, "Ensure that Linux kernel capabilities are restricted within containers",
        "Recreate the container without --cap-add (or with only the capabilities it needs), preferably with --cap-drop ALL.", Probe::Container(capabilities)),
    cis!("5.5", 1, Critical, G, F, "Ensure that privileged containers are not used",
        "Recreate the container without --privileged; grant the specific capabilities or devices it needs instead.", Probe::Container(privileged)),
    cis!("5.6", 1, High, G, F, "Ensure sensitive host system directories are not mounted on containers",
        "Do not mount /, /boot, /dev, /etc, /lib, /proc, /sys or /usr (or files under them) into containers.", Probe::Container(sensitive_mounts)),
    cis!("5.10", 1, High, G, F, "Ensure that the host's network namespace is not shared",
        "Recreate the container without --network host.", Probe::Container(host_network)),
    cis!("5.16", 1, High, G, F, "Ensure that the host's process namespace is not shared",
        "Recreate the container without --pid host.", Probe::Container(host_pid)),
    cis!("5.17", 1, High, G, F, "Ensure that the host's IPC namespace is not shared",
        "Recreate the container without --ipc host.", Probe::Container(host_ipc)),
    cis!("5.18", 1, Medium, G, F, "Ensure that host devices are not directly exposed to containers",
        "Recreate the container without --device, or with only the devices it needs and the narrowest permissions (r, w, m).", Probe::Container(devices)),
    cis!("5.20", 1, Medium, G, F, "Ensure mount propagation mode is not set to shared",
        "Mount volumes without shared/rshared propagation (the default rprivate).", Probe::Container(propagation)),
    cis!("5.21", 1, Medium, G, F, "Ensure that the host's UTS namespace is not shared",
        "Recreate the container without --uts host.", Probe::Container(host_uts)),
    cis!("5.22", 1, High, G, F, "Ensure the default seccomp profile is not Disabled",
        "Recreate the container without `--security-opt seccomp=unconfined` (and without --privileged, which disables seccomp).", Probe::Container(seccomp)),
    cis!("5.23", 2, Info, G, "/var/lib/docker", "Ensure that docker exec commands are not used with the privileged option",
        "Do not use `docker exec --privileged`.",
        Probe::HostArg(manual, "exec sessions leave no trace in Docker's state files: review the daemon's audit trail (`monitor run` raises a docker-exec alert for every exec request, with its Privileged setting)")),
    cis!("5.24", 2, Info, G, "/var/lib/docker", "Ensure that docker exec commands are not used with the user=root option",
        "Do not use `docker exec --user root`.",
        Probe::HostArg(manual, "exec sessions leave no trace in Docker's state files: review the daemon's audit trail (`monitor run` raises a docker-exec alert for every exec request, with its User)")),
    cis!("5.26", 1, Medium, G, F, "Ensure that the container is restricted from acquiring additional privileges",
        "Run the container with `--security-opt no-new-privileges` (or set \"no-new-privileges\": true in daemon.json).", Probe::Container(no_new_privileges)),
    cis!("5.31", 1, High, G, F, "Ensure that the host's user namespaces are not shared",
        "Recreate the container without --userns host.", Probe::Container(host_userns)),
    cis!("5.32", 1, Critical, G, F, "Ensure that the Docker socket is not mounted inside any containers",
        "Recreate the container without the Docker socket (or /run, /var/run) mounted: it gives full control of the host.", Probe::Container(docker_socket)),
];

fn apparmor_on(h: &Host) -> bool {
    h.read("/sys/module/apparmor/parameters/enabled").is_ok_and(|v| v.trim() == "Y")
}

fn selinux_on(h: &Host) -> bool {
    h.exists("/sys/fs/selinux/enforce")
}

/// The value of a security option (`seccomp` → `unconfined`).
fn opt(c: &Container, key: &str) -> Option<String> {
    c.security_opts()
        .into_iter()
        .find_map(|o| o.strip_prefix(key).and_then(|r| r.strip_prefix('=')).map(str::to_string))
}

fn apparmor(h: &Host, c: &Container) -> Outcome {
    if !apparmor_on(h) {
        return Outcome::not_applicable("AppArmor is not enabled in this host's kernel");
    }
    if c.host.privileged {
        return Outcome::fail(vec!["privileged: runs unconfined by AppArmor".into()]);
    }
    let profile = opt(c, "apparmor").unwrap_or_else(|| c.config.app_armor_profile.clone());
    match profile.as_str() {
        "unconfined" => Outcome::fail(vec!["AppArmor profile: unconfined".into()]),
        "" => Outcome::pass(vec!["AppArmor profile: Docker's default (docker-default, applied when the container starts)".into()]),
        p => Outcome::pass(vec![format!("AppArmor profile: {p}")]),
    }
}

fn selinux(h: &Host, c: &Container) -> Outcome {
    if !selinux_on(h) {
        return Outcome::not_applicable("SELinux is not enabled in this host's kernel");
    }
    if c.host.privileged {
        return Outcome::fail(vec!["privileged: runs without SELinux separation".into()]);
    }
    if opt(c, "label").as_deref() == Some("disable") {
        return Outcome::fail(vec!["security-opt label=disable".into()]);
    }
    if c.config.process_label.is_empty() {
        return Outcome::fail(vec![
            "no SELinux process label (is dockerd run with --selinux-enabled?)".into(),
        ]);
    }
    Outcome::pass(vec![format!("SELinux process label {}", c.config.process_label)])
}

fn capabilities(_: &Host, c: &Container) -> Outcome {
    if c.host.privileged {
        return Outcome::fail(vec!["privileged: every capability".into()]);
    }
    // `CAP_NET_ADMIN` and `NET_ADMIN` are the same capability to Docker.
    let names = |caps: &Option<Vec<String>>| -> Vec<String> {
        caps.iter().flatten().map(|cap| cap.trim_start_matches("CAP_").to_string()).collect()
    };
    let added = names(&c.host.cap_add);
    let dropped = names(&c.host.cap_drop).join(", ");
    let dropped = if dropped.is_empty() { "none".to_string() } else { dropped };
    if added.is_empty() {
        Outcome::pass(vec![format!("no capability added; dropped: {dropped}")])
    } else {
        Outcome::fail(vec![
            format!("capabilities added: {}", added.join(", ")),
            format!("dropped: {dropped}"),
        ])
    }
}

fn privileged(_: &Host, c: &Container) -> Outcome {
    Outcome::pass_if(
        !c.host.privileged,
        "Privileged: false",
        "Privileged: true: every capability and device, no seccomp, AppArmor or SELinux confinement",
    )
}

fn sensitive_mounts(_: &Host, c: &Container) -> Outcome {
    const DIRS: &[&str] = &["/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr"];
    let bad: Vec<String> = c
        .mounts()
        .into_iter()
        .filter(|(src, ..)| {
            src == "/" || DIRS.iter().any(|d| src == d || src.starts_with(&format!("{d}/")))
        })
        .map(|(src, dst, rw, _)| {
            format!("host {src} mounted at {dst} ({})", if rw { "read-write" } else { "read-only" })
        })
        .collect();
    or_pass(bad, c)
}

/// Fail with `bad`, or pass saying how many host mounts were looked at.
fn or_pass(bad: Vec<String>, c: &Container) -> Outcome {
    Outcome::fail_or_pass(bad, || {
        vec![format!("{} host mount(s), none concerned", c.mounts().len())]
    })
}

fn namespace(mode: &str, flag: &str) -> Outcome {
    let shown = if mode.is_empty() { "(default: private)" } else { mode };
    Outcome::pass_if(
        mode != "host",
        format!("{flag} {shown}"),
        format!("{flag} host: shares the host's namespace"),
    )
}

fn host_network(_: &Host, c: &Container) -> Outcome {
    namespace(&c.host.network_mode, "--network")
}

fn host_pid(_: &Host, c: &Container) -> Outcome {
    namespace(&c.host.pid_mode, "--pid")
}

fn host_ipc(_: &Host, c: &Container) -> Outcome {
    namespace(&c.host.ipc_mode, "--ipc")
}

fn host_uts(_: &Host, c: &Container) -> Outcome {
    namespace(&c.host.uts_mode, "--uts")
}

fn host_userns(_: &Host, c: &Container) -> Outcome {
    namespace(&c.host.userns_mode, "--userns")
}

fn devices(_: &Host, c: &Container) -> Outcome {
    if c.host.privileged {
        return Outcome::fail(vec!["privileged: every host device".into()]);
    }
    let d: Vec<String> = c
        .host
        .devices
        .iter()
        .flatten()
        .map(|d| {
            format!(
                "device {} at {} ({})",
                d.path_on_host, d.path_in_container, d.cgroup_permissions
            )
        })
        .collect();
    Outcome::warn_or_pass(
        "host devices are exposed: confirm each is needed, with the narrowest permissions",
        d,
        "no host device",
    )
}

fn propagation(_: &Host, c: &Container) -> Outcome {
    let bad = c
        .mounts()
        .into_iter()
        .filter(|(.., p)| p == "shared" || p == "rshared")
        .map(|(src, dst, _, p)| format!("host {src} mounted at {dst} with {p} propagation"))
        .collect();
    or_pass(bad, c)
}

fn seccomp(_: &Host, c: &Container) -> Outcome {
    if c.host.privileged {
        return Outcome::fail(vec!["privileged: runs without seccomp".into()]);
    }
    match opt(c, "seccomp") {
        Some(p) if p == "unconfined" => {
            Outcome::fail(vec!["security-opt seccomp=unconfined".into()])
        }
        _ if c.config.seccomp_profile == "unconfined" => {
            Outcome::fail(vec!["seccomp profile: unconfined".into()])
        }
        Some(p) => Outcome::pass(vec![format!("security-opt seccomp={p}")]),
        None => Outcome::pass(vec!["Docker's default seccomp profile".into()]),
    }
}

fn no_new_privileges(h: &Host, c: &Container) -> Outcome {
    let own = opt(c, "no-new-privileges");
    let set = c.security_opts().iter().any(|o| o == "no-new-privileges")
        || own.as_deref() == Some("true")
        || c.config.no_new_privileges;
    if set {
        return Outcome::pass(vec!["security-opt no-new-privileges".into()]);
    }
    if own.as_deref() != Some("false") {
        if let Ok(Some((true, source))) =
            h.docker().daemon.bool_setting("no-new-privileges", "--no-new-privileges")
        {
            return Outcome::pass(vec![format!("the daemon's default: {source}")]);
        }
    }
    Outcome::fail(vec!["no-new-privileges is not set: setuid binaries can raise privileges".into()])
}

fn docker_socket(_: &Host, c: &Container) -> Outcome {
    let bad = c
        .mounts()
        .into_iter()
        .filter(|(src, ..)| {
            src.ends_with("/docker.sock")
                || ["/run", "/var/run"].contains(&src.trim_end_matches('/'))
        })
        .map(|(src, dst, rw, _)| {
            format!(
                "host {src} mounted at {dst} ({}): the Docker API, root on the host",
                if rw { "read-write" } else { "read-only" }
            )
        })
        .collect();
    or_pass(bad, c)
}
