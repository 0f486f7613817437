//! The host an event happened on: its name, machine id, kernel, architecture and operating
//! system, as ECS `host.*` describes them. Live, read from this machine; a capture records
//! them for its replay; an audit log names only its host (`node=`).

use serde::{Deserialize, Serialize};

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The host's name (`/proc/sys/kernel/hostname`), "unknown" when unreadable.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A host, in ECS terms. Only the name is always known.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub name: String,
    /// /etc/machine-id, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// From /etc/os-release: NAME, VERSION_ID, ID, PRETTY_NAME, ID_LIKE (or ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_full: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_family: Option<String>,
}

impl HostInfo {
    /// This machine.
    pub fn read() -> HostInfo {
        let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let field = |k: &str| {
            release
                .lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
                .map(|v| v.trim().trim_matches('"').to_string())
                .filter(|v| !v.is_empty())
        };
        HostInfo {
            name: hostname(),
            id: std::fs::read_to_string("/etc/machine-id")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            architecture: Some(std::env::consts::ARCH.to_string()),
            kernel: Some(kernel_release()).filter(|k| !k.is_empty()),
            os_name: field("NAME"),
            os_version: field("VERSION_ID"),
            os_platform: field("ID"),
            os_full: field("PRETTY_NAME"),
            os_family: field("ID_LIKE")
                .map(|f| f.split_whitespace().next().unwrap_or("").to_string())
                .or_else(|| field("ID")),
        }
    }

    /// A host known by its name only (an audit log's `node=`, an old capture).
    pub fn named(name: &str) -> HostInfo {
        HostInfo { name: name.to_string(), ..HostInfo::default() }
    }

    /// What makes a process id unique on this host, for `process.entity_id`: the machine
    /// id, or the name when there is none.
    pub fn key(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.name)
    }

    /// The ECS `host` object.
    pub fn ecs(&self) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        let mut host = Map::new();
        host.insert("name".into(), json!(self.name));
        host.insert("hostname".into(), json!(self.name));
        if let Some(id) = &self.id {
            host.insert("id".into(), json!(id));
        }
        if let Some(a) = &self.architecture {
            host.insert("architecture".into(), json!(a));
        }
        let mut os = Map::new();
        for (k, v) in [
            ("kernel", &self.kernel),
            ("name", &self.os_name),
            ("version", &self.os_version),
            ("platform", &self.os_platform),
            ("full", &self.os_full),
            ("family", &self.os_family),
        ] {
            if let Some(v) = v {
                os.insert(k.into(), json!(v));
            }
        }
        if !os.is_empty() {
            os.insert("type".into(), json!("linux"));
            host.insert("os".into(), Value::Object(os));
        }
        Value::Object(host)
    }
}

impl From<&str> for HostInfo {
    fn from(name: &str) -> HostInfo {
        HostInfo::named(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_has_a_name_an_architecture_and_a_kernel_and_a_named_one_only_its_name() {
        let h = HostInfo::read();
        let v = h.ecs();
        assert_eq!(v["name"], h.name);
        assert_eq!(v["hostname"], h.name);
        assert_eq!(v["os"]["type"], "linux");
        assert!(v["os"]["kernel"].as_str().is_some_and(|k| !k.is_empty()), "{v}");
        assert!(v["architecture"].is_string());
        let n = HostInfo::named("web1").ecs();
        assert_eq!(n, serde_json::json!({"name": "web1", "hostname": "web1"}));
        assert_eq!(HostInfo::named("web1").key(), "web1");
        let back: HostInfo = serde_json::from_value(serde_json::to_value(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }
}
