//! The `fivewatch` command: `run` (daemon), `replay` (offline analysis), `check-config`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use fivewatch::app::{self, AlertSink, RunOptions, Source};
use fivewatch::config::Config;

#[derive(Parser)]
#[command(
    name = "fivewatch",
    version,
    about = "5G (GTP-U/PFCP) and IP traffic anomaly detector: alerts as JSON lines, metrics for Prometheus"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon on a live interface or a capture file replayed at recorded speed.
    Run {
        /// Configuration file (TOML); defaults apply when omitted.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Capture live from this interface (AF_PACKET; needs CAP_NET_RAW).
        #[arg(long, value_name = "NAME", conflicts_with = "pcap")]
        interface: Option<String>,
        /// Replay this capture file (pcap or pcapng) at its recorded speed.
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
        /// Replay speed for --pcap: 1 = recorded speed, 10 = ten times faster (0.001 to 1e6).
        #[arg(long, value_name = "FACTOR", value_parser = parse_speed)]
        speed: Option<f64>,
        /// Replay --pcap again from the start when it ends, until stopped.
        #[arg(long = "loop")]
        replay_loop: bool,
        /// Seconds to keep serving /metrics after --pcap ends, 0 to 1e7 (default: until
        /// Ctrl-C/SIGTERM).
        #[arg(long, value_name = "SECONDS", value_parser = parse_linger, allow_negative_numbers = true)]
        linger: Option<f64>,
        /// Metrics HTTP listen address (default 127.0.0.1:9977; "" disables).
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<String>,
        /// Append alert records (JSON lines) to this file.
        #[arg(long, value_name = "FILE")]
        alerts: Option<PathBuf>,
        /// Do not print alert records on standard output.
        #[arg(long)]
        quiet: bool,
        /// Flow worker threads (default: `pipeline.workers` of the config; 0 = one per CPU
        /// core).
        #[arg(long, value_name = "N", value_parser = parse_workers)]
        workers: Option<usize>,
    },
    /// Analyse capture files offline as fast as possible and print a summary.
    #[command(
        after_help = "Exit status: 0 success; 1 error (configuration, an output that cannot be \
        opened, the summary cannot be written); 2 a capture file cannot be opened or read, or is \
        truncated or corrupt (everything before the damage was processed), or bad command-line usage; 3 alert or flow records could not be \
        written, e.g. disk full (takes precedence over 2)."
    )]
    Replay {
        /// Configuration file (TOML); defaults apply when omitted.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Append alert records (JSON lines) to this file; "-" for standard output.
        #[arg(long, value_name = "FILE")]
        alerts: Option<PathBuf>,
        /// Write the summary as JSON to this file; "-" for standard output.
        #[arg(long, value_name = "FILE")]
        stats_json: Option<PathBuf>,
        /// Write one JSON flow record per flow (EVE `flow`-like) to this file, appended; "-"
        /// for standard output. Default: `flow.records_file` of the config.
        #[arg(long, value_name = "FILE")]
        flows: Option<PathBuf>,
        /// Flow worker threads (default: `pipeline.workers` of the config; 0 = one per CPU
        /// core). Alerts, flow records and counters are the same for any number of workers
        /// while no worker's share of `flow.capacity` (1/N each) fills up.
        #[arg(long, value_name = "N", value_parser = parse_workers)]
        workers: Option<usize>,
        /// Read every capture file whole into memory (all of them, each to its end, pipes
        /// included) before processing starts: the summary's wall time and packets/s then
        /// cover the processing alone, the reading is in `preload_time_s` of --stats-json (a
        /// benchmark of the pipeline from memory). Needs memory for every file's captured
        /// bytes plus 32 bytes per packet, with 64 MiB to spare: a file that does not fit is
        /// reported like a file that cannot be read (exit 2), after the packets loaded
        /// before are processed.
        #[arg(long)]
        preload: bool,
        /// Capture files (pcap or pcapng, recognised by content), processed in order.
        #[arg(required = true, value_name = "PCAP")]
        pcaps: Vec<PathBuf>,
    },
    /// Validate a configuration file; exits non-zero with the key and line of the problem.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

/// `--workers`: 0 (one per CPU core) to [`fivewatch::config::MAX_WORKERS`].
fn parse_workers(s: &str) -> Result<usize, String> {
    let max = fivewatch::config::MAX_WORKERS;
    match s.trim().parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "must be a whole number from 0 (one per CPU core) to {max}, got {s}"
        )),
    }
}

/// `--speed`: a finite number from [`app::MIN_REPLAY_SPEED`] to [`app::MAX_REPLAY_SPEED`].
fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("not a number: {s:?}"))?;
    if v.is_finite() && (app::MIN_REPLAY_SPEED..=app::MAX_REPLAY_SPEED).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "must be a number from {} to {} (1 = recorded speed), got {s}",
            app::MIN_REPLAY_SPEED,
            app::MAX_REPLAY_SPEED
        ))
    }
}

/// `--linger`: finite seconds from 0 to [`app::MAX_LINGER_S`].
fn parse_linger(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("not a number: {s:?}"))?;
    if v.is_finite() && (0.0..=app::MAX_LINGER_S).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "must be a number of seconds from 0 to {:e} (omit it to linger until Ctrl-C/SIGTERM), got {s}",
            app::MAX_LINGER_S
        ))
    }
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("FIVEWATCH_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colour only on a terminal (and never with NO_COLOR): journald and files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none())
        .init();
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fivewatch: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { file } => {
            let cfg = Config::load(&file)?;
            app::preflight(&cfg).with_context(|| format!("config file {}", file.display()))?;
            if cfg.capture.interface.is_empty() && cfg.capture.pcap.is_empty() {
                eprintln!(
                    "{}: warning: neither capture.interface nor capture.pcap is set: `fivewatch run` will need --interface or --pcap",
                    file.display()
                );
            }
            if cfg.alerts.file.is_empty() {
                eprintln!(
                    "{}: warning: alerts.file is not set: alerts go to standard output only (nowhere with --quiet)",
                    file.display()
                );
            }
            println!("{}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            config,
            alerts,
            stats_json,
            flows,
            workers,
            preload,
            pcaps,
        } => {
            let mut cfg = load(config.as_ref())?;
            if let Some(n) = workers {
                cfg.pipeline.workers = n;
            }
            let dash = |p: &Option<PathBuf>| p.as_deref().is_some_and(|p| p.as_os_str() == "-");
            let to_stdout = dash(&alerts);
            let json_to_stdout = dash(&stats_json);
            let flows =
                flows.or_else(|| (!cfg.flow.records_file.is_empty()).then(|| cfg.flow.records_file.clone().into()));
            let flows_to_stdout = dash(&flows);
            let on_stdout = [to_stdout, json_to_stdout, flows_to_stdout]
                .iter()
                .filter(|b| **b)
                .count();
            if on_stdout > 1 {
                // Bad command-line usage: exit 2, as clap does.
                eprintln!(
                    "fivewatch: error: only one of --alerts -, --stats-json - and --flows - can use standard output (their lines would mix)"
                );
                return Ok(ExitCode::from(2));
            }
            let file = alerts.as_deref().filter(|_| !to_stdout);
            let mut sink = AlertSink::open(file, to_stdout)?;
            let mut flow_sink = match &flows {
                Some(p) if flows_to_stdout => Some(AlertSink::open(None, true)?),
                Some(p) => Some(AlertSink::open(Some(p), false).with_context(|| "--flows / flow.records_file")?),
                None => None,
            };
            let summary = app::replay_with(
                &cfg,
                &pcaps,
                &mut sink,
                flow_sink.as_mut(),
                app::ReplayOptions { preload },
            );
            let text = summary.render();
            if to_stdout || json_to_stdout || flows_to_stdout {
                eprint!("{text}");
            } else {
                // A closed stdout (`| head`) must not panic; the exit status still tells.
                let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
            }
            if let Some(p) = stats_json {
                let json = serde_json::to_string_pretty(&summary)? + "\n";
                if p.as_os_str() == "-" {
                    let _ = std::io::Write::write_all(&mut std::io::stdout(), json.as_bytes());
                } else {
                    std::fs::write(&p, json).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
                }
            }
            let failed = summary.files.iter().filter(|f| f.error.is_some()).count();
            for f in summary.files.iter().filter_map(|f| f.error.as_ref()) {
                eprintln!("fivewatch: error: {f}");
            }
            if summary.alert_sink_errors > 0 || summary.flow_record_errors > 0 {
                eprintln!(
                    "fivewatch: error: {} alert records and {} flow records could not be written",
                    summary.alert_sink_errors, summary.flow_record_errors
                );
                return Ok(ExitCode::from(3));
            }
            if failed > 0 {
                return Ok(ExitCode::from(2));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            interface,
            pcap,
            speed,
            replay_loop,
            linger,
            metrics_listen,
            alerts,
            quiet,
            workers,
        } => {
            let mut cfg = load(config.as_ref())?;
            if let Some(n) = workers {
                cfg.pipeline.workers = n;
            }
            if let Some(i) = interface {
                cfg.capture.interface = i;
                cfg.capture.pcap.clear();
            }
            if let Some(p) = pcap {
                cfg.capture.pcap = p.display().to_string();
                cfg.capture.interface.clear();
            }
            if let Some(s) = speed {
                cfg.capture.replay_speed = s;
            }
            if replay_loop {
                cfg.capture.replay_loop = true;
            }
            if let Some(m) = metrics_listen {
                cfg.metrics.listen = m;
            }
            if let Some(a) = alerts {
                cfg.alerts.file = a.display().to_string();
            }
            if quiet {
                cfg.alerts.stdout = false;
            }
            cfg.validate(config.as_deref().unwrap_or(std::path::Path::new("<command line>")))?;
            if !cfg.capture.interface.is_empty() && (speed.is_some() || replay_loop || linger.is_some()) {
                tracing::warn!("--speed, --loop and --linger apply to --pcap only: ignored for a live interface");
            }
            let source = if !cfg.capture.interface.is_empty() {
                Source::Interface(cfg.capture.interface.clone())
            } else if !cfg.capture.pcap.is_empty() {
                Source::File {
                    path: cfg.capture.pcap.clone().into(),
                    speed: cfg.capture.replay_speed,
                    looped: cfg.capture.replay_loop,
                }
            } else {
                anyhow::bail!("no packet source: give --interface NAME or --pcap FILE (or capture.interface / capture.pcap in the config)");
            };
            app::preflight(&cfg)?;
            let metrics_listen = if cfg.metrics.listen.is_empty() {
                None
            } else {
                Some(cfg.metrics.listen.parse()?)
            };
            let file = (!cfg.alerts.file.is_empty()).then(|| PathBuf::from(&cfg.alerts.file));
            if file.is_none() && !cfg.alerts.stdout {
                tracing::warn!(
                    "alert records are written nowhere: set alerts.file (or --alerts FILE), or drop --quiet"
                );
            }
            let sink = AlertSink::open(file.as_deref(), cfg.alerts.stdout)?;
            app::run(
                &cfg,
                &RunOptions {
                    source,
                    metrics_listen,
                    linger,
                },
                sink,
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
