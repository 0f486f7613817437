//! `monitor run`: the live monitor, with its settings (flags over monitor.toml) settled.

use crate::cli::{RunArgs, Source};
use monitor::error::exit;
use monitor::pipeline::live::{run_live, RunOptions, SourceKind};
use monitor::rules::parse::SystemIds;
use monitor::rules::RuleSet;
use monitor::Error;

pub fn run(args: RunArgs) -> monitor::Result<u8> {
    let RunArgs {
        rules: paths,
        heartbeat,
        capture,
        source,
        ring_buffer_size,
        presentation,
        output,
        ..
    } = args;
    let source = match source {
        Source::Ebpf => SourceKind::Ebpf { ring: ring_buffer_size },
        Source::Audit => SourceKind::Audit,
    };
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::NotRoot(match source {
            SourceKind::Ebpf { .. } => "loading eBPF programs needs CAP_BPF and CAP_PERFMON",
            SourceKind::Audit => "reading the audit multicast needs CAP_AUDIT_READ",
        }));
    }
    if matches!(source, SourceKind::Ebpf { .. })
        && !std::path::Path::new("/sys/kernel/btf/vmlinux").exists()
    {
        return Err(Error::KernelUnsupported("kernel BTF (/sys/kernel/btf/vmlinux) is missing: a kernel built with CONFIG_DEBUG_INFO_BTF is required".into()));
    }
    let rules = super::load_rules(&paths)?;
    super::log_warnings(&rules, source == SourceKind::Audit);
    let rules = rules.with_self_defence(&SystemIds::load())?;
    let output = super::open_outputs(&output)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io { context: "starting the runtime".into(), source })?;
    let reload = move || -> Result<RuleSet, Vec<String>> {
        let set = super::load_rules(&paths).map_err(|e| match e {
            Error::Rules(errors) => errors.0.iter().map(|d| d.to_string()).collect(),
            other => vec![other.to_string()],
        })?;
        set.with_self_defence(&SystemIds::load())
            .map_err(|e| e.0.iter().map(|d| d.to_string()).collect())
    };
    let opts = RunOptions {
        heartbeat: (heartbeat > 0).then(|| std::time::Duration::from_secs(heartbeat)),
        reload: Box::new(reload),
        capture,
        source,
        presentation: presentation.presentation(),
    };
    rt.block_on(run_live(rules, opts, output))?;
    Ok(exit::OK)
}
