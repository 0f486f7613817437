//! Built-in detections on what a client asks of the Docker Engine API.
//!
//! Requests come from the connections to watched sockets (see `detect::http`). Each request
//! is decoded into the settings that matter for the host's safety — for a container create:
//! privileged mode, host bind mounts, host namespaces, added capabilities, disabled
//! confinement, devices; for an exec: the command — and every risky setting becomes a
//! finding with its own key (`docker-privileged`, `docker-host-mount`, ...).

use super::http::Request;
use serde_json::{json, Value};

/// Key of a request without findings.
pub const KEY_REQUEST: &str = "docker-api";
/// `rule.source` of these alerts.
pub const SOURCE: &str = "builtin:docker-api";

/// Host paths whose bind mount hands the container the host.
const SENSITIVE: &[(&str, &str)] = &[
    ("/run/docker.sock", "docker socket"),
    ("/var/run/docker.sock", "docker socket"),
    ("/run/containerd/containerd.sock", "containerd socket"),
    ("/var/lib/docker", "docker state"),
    ("/etc", "host configuration"),
    ("/proc", "host procfs"),
    ("/sys", "host sysfs"),
    ("/dev", "host devices"),
    ("/root", "root's home"),
    ("/boot", "host boot files"),
];

/// One risky setting of a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub key: &'static str,
    pub detail: String,
}

/// A decoded request.
#[derive(Clone, Debug)]
pub struct DockerRequest {
    /// `{"method","path","api_version","query"}`
    pub request: Value,
    /// Decoded settings (`{"create": …}` or `{"exec": …}`), or null.
    pub decoded: Value,
    pub body_truncated: bool,
    pub findings: Vec<Finding>,
}

impl DockerRequest {
    /// Keys for the alert: the findings' (most severe first), or [`KEY_REQUEST`].
    pub fn keys(&self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = Vec::new();
        for f in &self.findings {
            if !keys.contains(&f.key) {
                keys.push(f.key);
            }
        }
        if keys.is_empty() {
            keys.push(KEY_REQUEST);
        }
        keys
    }
}

/// `/v1.41/containers/create` → (`Some("1.41")`, `/containers/create`).
fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(slash) = rest.find('/') {
            let v = &rest[..slash];
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return (Some(v), &rest[slash..]);
            }
        }
    }
    (None, path)
}

fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v))
}

pub fn decode(req: &Request) -> DockerRequest {
    let (version, endpoint) = split_version(&req.path);
    let request = json!({
        "method": req.method,
        "path": req.path,
        "api_version": version,
        "query": (!req.query.is_empty()).then_some(&req.query),
    });
    let body: Option<Value> = serde_json::from_slice(&req.body).ok();
    let mut findings = Vec::new();
    let parts: Vec<&str> = endpoint.split('/').collect();
    let decoded = match (req.method.as_str(), parts.as_slice()) {
        ("POST", ["", "containers", "create"]) => {
            let name = query_param(&req.query, "name");
            body.as_ref().map(|b| create(b, name, &mut findings)).unwrap_or(Value::Null)
        }
        ("POST", ["", "containers", target, "exec"]) => {
            body.as_ref().map(|b| exec(b, target, &mut findings)).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    };
    DockerRequest { request, decoded, body_truncated: req.body_truncated, findings }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// What a host path is, when mounting it is dangerous.
fn sensitive(source: &str) -> Option<&'static str> {
    let source = source.trim_end_matches('/');
    if source.is_empty() {
        return Some("host root");
    }
    SENSITIVE.iter().find_map(|(p, what)| {
        (source == *p || (source.starts_with(p) && source.as_bytes().get(p.len()) == Some(&b'/')))
            .then_some(*what)
    })
}

fn create(body: &Value, name: Option<&str>, findings: &mut Vec<Finding>) -> Value {
    let host = body.get("HostConfig").cloned().unwrap_or(Value::Null);
    let privileged = host.get("Privileged").and_then(Value::as_bool).unwrap_or(false);
    if privileged {
        findings.push(Finding { key: "docker-privileged", detail: "privileged container".into() });
    }
    // Host bind mounts: `Binds` ("src:dst[:opts]", src absolute) and `Mounts` of type bind.
    let mut binds = Vec::new();
    for b in strings(host.get("Binds")) {
        let mut it = b.splitn(3, ':');
        let (src, dst, opts) =
            (it.next().unwrap_or(""), it.next().unwrap_or(""), it.next().unwrap_or(""));
        if src.starts_with('/') {
            binds.push((src.to_string(), dst.to_string(), opts.split(',').any(|o| o == "ro")));
        }
    }
    for m in host.get("Mounts").and_then(Value::as_array).into_iter().flatten() {
        if m.get("Type").and_then(Value::as_str) == Some("bind") {
            let s = m.get("Source").and_then(Value::as_str).unwrap_or("").to_string();
            let t = m.get("Target").and_then(Value::as_str).unwrap_or("").to_string();
            binds.push((s, t, m.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false)));
        }
    }
    let mut bind_json = Vec::new();
    let (mut risky, mut other) = (Vec::new(), Vec::new());
    for (src, dst, ro) in &binds {
        let what = sensitive(src);
        let ro_text = if *ro { " read-only" } else { "" };
        match what {
            Some(w) => risky.push(Finding {
                key: "docker-host-mount",
                detail: format!("{src} ({w}) mounted at {dst}{ro_text}"),
            }),
            None => other.push(Finding {
                key: "docker-host-mount",
                detail: format!("{src} mounted at {dst}{ro_text}"),
            }),
        }
        bind_json.push(json!({"source": src, "target": dst, "read_only": ro, "sensitive": what}));
    }
    // Sensitive mounts first (the sort below is stable).
    findings.extend(risky);
    findings.extend(other);
    let mut namespaces = serde_json::Map::new();
    for (field, ns) in [
        ("PidMode", "pid"),
        ("NetworkMode", "network"),
        ("IpcMode", "ipc"),
        ("UTSMode", "uts"),
        ("UsernsMode", "user"),
        ("CgroupnsMode", "cgroup"),
    ] {
        if host.get(field).and_then(Value::as_str) == Some("host") {
            namespaces.insert(ns.into(), json!("host"));
            findings
                .push(Finding { key: "docker-host-namespace", detail: format!("{field}=host") });
        }
    }
    let cap_add = strings(host.get("CapAdd"));
    if !cap_add.is_empty() {
        findings.push(Finding {
            key: "docker-cap-add",
            detail: format!("capabilities added: {}", cap_add.join(", ")),
        });
    }
    let security_opt = strings(host.get("SecurityOpt"));
    for opt in &security_opt {
        let o = opt.replace(':', "=");
        if ["seccomp=unconfined", "apparmor=unconfined", "label=disable", "systempaths=unconfined"]
            .contains(&o.as_str())
            || o.starts_with("label=type=spc_t")
        {
            findings.push(Finding {
                key: "docker-security-opt",
                detail: format!("confinement disabled: {opt}"),
            });
        }
    }
    let devices: Vec<String> = host
        .get("Devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("PathOnHost").and_then(Value::as_str).map(str::to_string))
        .collect();
    if !devices.is_empty() {
        findings.push(Finding {
            key: "docker-devices",
            detail: format!("host devices: {}", devices.join(", ")),
        });
    }
    findings.sort_by_key(|f| severity(f.key));
    json!({"create": {
        "name": name,
        "image": body.get("Image").and_then(Value::as_str),
        "cmd": strings(body.get("Cmd")),
        "user": body.get("User").and_then(Value::as_str).filter(|u| !u.is_empty()),
        "privileged": privileged,
        "binds": bind_json,
        "namespaces": namespaces,
        "cap_add": cap_add,
        "security_opt": security_opt,
        "devices": devices,
    }})
}

fn exec(body: &Value, target: &str, findings: &mut Vec<Finding>) -> Value {
    let cmd = strings(body.get("Cmd"));
    let privileged = body.get("Privileged").and_then(Value::as_bool).unwrap_or(false);
    let user = body.get("User").and_then(Value::as_str).filter(|u| !u.is_empty());
    if privileged {
        findings.push(Finding {
            key: "docker-privileged",
            detail: format!("privileged exec in {target}"),
        });
    }
    findings.push(Finding {
        key: "docker-exec",
        detail: format!("exec in {target}: {}", cmd.join(" ")),
    });
    json!({"exec": {"container": target, "cmd": cmd, "user": user, "privileged": privileged}})
}

/// Order of keys in an alert: the most dangerous first.
fn severity(key: &str) -> u8 {
    match key {
        "docker-privileged" => 0,
        "docker-host-mount" => 1,
        "docker-host-namespace" => 2,
        "docker-security-opt" => 3,
        "docker-cap-add" => 4,
        "docker-devices" => 5,
        "docker-exec" => 6,
        _ => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, body: &str) -> Request {
        Request {
            method: "POST".into(),
            path: path.split('?').next().unwrap().into(),
            query: path.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default(),
            version: "HTTP/1.1".into(),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn privileged_create_with_host_root_and_socket() {
        let r = decode(&post(
            "/v1.41/containers/create?name=evil",
            r#"{"Image":"local/busybox:1","Cmd":["sh"],"HostConfig":{"Privileged":true,
               "Binds":["/:/host","/var/run/docker.sock:/x.sock:ro","data:/data"],
               "Mounts":[{"Type":"bind","Source":"/etc/shadow","Target":"/s"}],
               "PidMode":"host","NetworkMode":"host","CapAdd":["SYS_ADMIN"],
               "SecurityOpt":["seccomp=unconfined","apparmor:unconfined"],
               "Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda"}]}}"#,
        ));
        assert_eq!(r.request["api_version"], "1.41");
        assert_eq!(
            r.keys(),
            vec![
                "docker-privileged",
                "docker-host-mount",
                "docker-host-namespace",
                "docker-security-opt",
                "docker-cap-add",
                "docker-devices"
            ]
        );
        let c = &r.decoded["create"];
        assert_eq!(c["name"], "evil");
        assert_eq!(
            c["binds"].as_array().unwrap().len(),
            3,
            "named volume `data` is not a host mount"
        );
        assert_eq!(c["binds"][0]["sensitive"], "host root");
        assert_eq!(c["binds"][1]["sensitive"], "docker socket");
        assert_eq!(c["binds"][1]["read_only"], true);
        assert_eq!(c["binds"][2]["sensitive"], "host configuration");
        assert_eq!(c["namespaces"]["pid"], "host");
        let mounts: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.key == "docker-host-mount")
            .map(|f| f.detail.as_str())
            .collect();
        assert!(mounts[0].starts_with("/ (host root)"), "{mounts:?}");
    }

    #[test]
    fn plain_requests_and_exec() {
        let get = Request {
            method: "GET".into(),
            path: "/v1.41/containers/json".into(),
            ..Default::default()
        };
        let r = decode(&get);
        assert_eq!(r.keys(), vec![KEY_REQUEST]);
        assert!(r.decoded.is_null());
        let plain =
            decode(&post("/v1.41/containers/create", r#"{"Image":"x","HostConfig":{"Binds":[]}}"#));
        assert_eq!(plain.keys(), vec![KEY_REQUEST]);
        let e = decode(&post(
            "/v1.41/containers/web/exec",
            r#"{"Cmd":["cat","/etc/shadow"],"User":"0"}"#,
        ));
        assert_eq!(e.keys(), vec!["docker-exec"]);
        assert_eq!(e.decoded["exec"]["container"], "web");
        assert_eq!(e.decoded["exec"]["cmd"][1], "/etc/shadow");
        // Unversioned paths and truncated bodies decode as far as they go.
        let mut t = post("/containers/create", r#"{"HostConfig":{"Privi"#);
        t.body_truncated = true;
        let r = decode(&t);
        assert_eq!(r.request["api_version"], Value::Null);
        assert!(r.body_truncated);
        assert_eq!(r.keys(), vec![KEY_REQUEST]);
    }

    #[test]
    fn sensitive_paths() {
        assert_eq!(sensitive("/"), Some("host root"));
        assert_eq!(sensitive("/etc/"), Some("host configuration"));
        assert_eq!(sensitive("/var/lib/docker/volumes"), Some("docker state"));
        assert_eq!(sensitive("/etcetera"), None);
        assert_eq!(sensitive("/home/user/src"), None);
    }
}
