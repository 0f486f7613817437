//! CIS section 4, container images: the user each container runs as (4.1, per container),
//! content trust, and per image its HEALTHCHECK, and what its build history shows of
//! update-only steps, ADD and secrets in ENV. Build practice the image config does not
//! record (trusted bases, package choice, scanning, setuid files, signatures) is a manual
//! review.

use super::{cis, manual};
use crate::check::docker_state::{Container, Image};
use crate::check::{Check, Host, Outcome, Probe};

const G: &str = "cis-4 images";
const IMAGEDB: &str = "/var/lib/docker/image";

pub const CHECKS: &[Check] = &[
    cis!("4.1", 1, Medium, G, "/var/lib/docker/containers", "Ensure that a user for the container has been created",
        "Create a user in the image (`RUN useradd ...` then `USER app`) or run the container with --user UID.", Probe::Container(user)),
    cis!("4.2", 1, Info, G, IMAGEDB, "Ensure that containers use only trusted base images",
        "Build only from base images of trusted, maintained sources, pinned by digest.",
        Probe::HostArg(manual, "whether each image's base comes from a trusted source is not recorded in Docker's state: review the Dockerfiles and registries")),
    cis!("4.3", 1, Info, G, IMAGEDB, "Ensure that unnecessary packages are not installed in the container",
        "Install only what the service needs; prefer minimal or distroless bases.",
        Probe::HostArg(manual, "which packages an image needs is a judgement about its service: review each image's package list")),
    cis!("4.4", 1, Info, G, IMAGEDB, "Ensure images are scanned and rebuilt to include security patches",
        "Scan images regularly (e.g. Trivy, Docker Scout) and rebuild them on patched bases.",
        Probe::HostArg(manual, "vulnerability scanning needs a vulnerability database, which this read-only check does not have: scan the images with a scanner")),
    cis!("4.5", 2, Low, G, "/etc/environment", "Ensure Content trust for Docker is Enabled",
        "export DOCKER_CONTENT_TRUST=1 (e.g. in /etc/environment or /etc/profile.d/) so that the client pulls only signed images.", Probe::Host(content_trust)),
    cis!("4.6", 1, Low, G, IMAGEDB, "Ensure that HEALTHCHECK instructions have been added to container images",
        "Add a HEALTHCHECK instruction to the Dockerfile.", Probe::Image(healthcheck)),
    cis!("4.7", 1, Low, G, IMAGEDB, "Ensure update instructions are not used alone in the Dockerfile",
        "Combine the package index update with the install in one RUN (`apt-get update && apt-get install -y ...`).", Probe::Image(update_alone)),
    cis!("4.8", 2, Info, G, IMAGEDB, "Ensure setuid and setgid permissions are removed",
        "Remove setuid/setgid bits in the image (`RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} +`).",
        Probe::HostArg(manual, "which setuid/setgid files an image keeps is in its layers, which this check does not unpack: list them with `find / -xdev -perm /6000` in the image")),
    cis!("4.9", 1, Low, G, IMAGEDB, "Ensure that COPY is used instead of ADD in Dockerfiles",
        "Use COPY; fetch remote files with a verified download in a RUN step.", Probe::Image(add_instead_of_copy)),
    cis!("4.10", 1, High, G, IMAGEDB, "Ensure secrets are not stored in Dockerfiles",
        "Pass secrets at run time (secrets, mounted files) or with BuildKit's --secret, never ENV or ARG.", Probe::Image(secrets)),
    cis!("4.11", 2, Info, G, IMAGEDB, "Ensure only verified packages are installed",
        "Install packages only from repositories whose signatures the package manager verifies.",
        Probe::HostArg(manual, "whether packages were verified when the image was built is not recorded: review the Dockerfiles' package sources and keys")),
    cis!("4.12", 2, Info, G, IMAGEDB, "Ensure all signed artifacts are validated",
        "Verify signatures of downloaded artifacts (cosign, GPG) before using them in a build.",
        Probe::HostArg(manual, "artifact signature checks happen at build time and leave no trace in the image config: review the build pipeline")),
];

/// 4.1: the user a container's processes start as (its own --user, else its image's USER).
fn user(_: &Host, c: &Container) -> Outcome {
    let u = c.config.config.user.trim();
    let name = u.split(':').next().unwrap_or("");
    if name.is_empty() || name == "root" || name == "0" {
        let shown =
            if u.is_empty() { "no user set (root)".to_string() } else { format!("user {u:?}") };
        Outcome::fail(vec![format!("{shown}: the container runs as root")])
    } else {
        Outcome::pass(vec![format!("user {u:?}")])
    }
}

fn content_trust(h: &Host) -> Outcome {
    let on = |v: &str| {
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
        v == "1" || v.eq_ignore_ascii_case("true")
    };
    if let Ok(v) = std::env::var("DOCKER_CONTENT_TRUST") {
        if on(&v) {
            return Outcome::pass(vec![format!("DOCKER_CONTENT_TRUST={v} in this environment")]);
        }
    }
    let mut files = vec![h.path("/etc/environment")];
    files.extend(h.dir("/etc/profile.d"));
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            if let Some(v) =
                line.trim_start_matches("export ").strip_prefix("DOCKER_CONTENT_TRUST=")
            {
                if on(v) {
                    return Outcome::pass(vec![format!("{}: {line}", f.display())]);
                }
            }
        }
    }
    Outcome::fail(vec!["DOCKER_CONTENT_TRUST=1 is set neither in this environment nor in /etc/environment or /etc/profile.d".into()])
}

fn healthcheck(_: &Host, i: &Image) -> Outcome {
    let hc = i.config.config.as_ref().and_then(|c| c.healthcheck.as_ref());
    match hc.and_then(|h| h.test.as_ref()).filter(|t| !t.is_empty() && t[0] != "NONE") {
        Some(test) => Outcome::pass(vec![format!("HEALTHCHECK {}", test.join(" "))]),
        None => Outcome::fail(vec!["no HEALTHCHECK in the image config".into()]),
    }
}

/// The build steps recorded in the image's history.
fn steps(i: &Image) -> Vec<&str> {
    i.config.history.iter().flatten().filter_map(|h| h.created_by.as_deref()).collect()
}

/// Warn with the build steps `flagged` picks (`reason`: what to confirm), or pass saying
/// how many steps the history has, `clean` of them.
fn flag_steps(i: &Image, flagged: impl Fn(&str) -> bool, reason: &str, clean: &str) -> Outcome {
    let all = steps(i);
    let found: Vec<String> =
        all.iter().filter(|s| flagged(s)).map(|s| format!("history: {}", s.trim())).collect();
    let passing = format!("{} build step(s) in the history; {clean}", all.len());
    Outcome::warn_or_pass(reason, found, &passing)
}

fn update_alone(_: &Host, i: &Image) -> Outcome {
    let updates = [
        "apt-get update",
        "apt update",
        "apk update",
        "yum update",
        "dnf update",
        "zypper refresh",
        "yum makecache",
    ];
    let installs = ["install", "apk add", "upgrade"];
    flag_steps(
        i,
        |s| updates.iter().any(|u| s.contains(u)) && !installs.iter().any(|x| s.contains(x)),
        "a package index update in a step of its own is cached and goes stale: confirm the Dockerfile",
        "none updates a package index alone",
    )
}

fn add_instead_of_copy(_: &Host, i: &Image) -> Outcome {
    // A base image's root file system is an ADD too: a person tells it from a fetch.
    flag_steps(
        i,
        |s| s.contains("#(nop) ADD") || s.trim_start().starts_with("ADD "),
        "ADD fetches URLs and unpacks archives: confirm each is a base layer or should be COPY",
        "no ADD",
    )
}

fn secrets(_: &Host, i: &Image) -> Outcome {
    let words = [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
        "CREDENTIAL",
    ];
    let env = i.config.config.as_ref().and_then(|c| c.env.clone()).unwrap_or_default();
    let mut found: Vec<String> = env
        .iter()
        .filter_map(|e| e.split_once('='))
        .filter(|(k, v)| !v.is_empty() && words.iter().any(|w| k.to_ascii_uppercase().contains(w)))
        .map(|(k, _)| format!("ENV {k} has a value (not shown)"))
        .collect();
    for s in steps(i) {
        if let Some(arg) = s.split_whitespace().find(|w| {
            w.contains('=')
                && words
                    .iter()
                    .any(|x| w.split('=').next().unwrap_or("").to_ascii_uppercase().contains(x))
        }) {
            found.push(format!(
                "history: a build step sets {} (value not shown)",
                arg.split('=').next().unwrap_or(arg)
            ));
        }
    }
    Outcome::fail_or_pass(found, || {
        vec!["no ENV or build argument named like a secret in the image config (files in the layers are not read)".into()]
    })
}
