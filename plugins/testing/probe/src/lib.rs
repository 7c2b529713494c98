//! `test:probe`: tries what a sandboxed plugin must not be able to do through WASI and reports
//! each outcome on its own port, as `error: …` or `ok: …`. Under a deny-by-default host every
//! port reads `error: …`, except `env`, which reads `ok: 0 variables`.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use tailor_plugin_sdk::prelude::*;

pub struct Probe;

/// Each attempt, by output port.
const ATTEMPTS: [(&str, &str); 6] = [
    ("fs", "read /etc/passwd"),
    ("cwd", "list the current directory"),
    ("root", "list /"),
    ("env", "read the environment variables"),
    ("net", "open a TCP connection to 127.0.0.1:9"),
    ("dns", "resolve example.com"),
];

fn outcome<T, E: std::fmt::Display>(result: Result<T, E>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => format!("ok: {}", ok(value)),
        Err(e) => format!("error: {e}"),
    }
}

fn attempt(port: &str) -> String {
    match port {
        "fs" => outcome(
            std::fs::File::open("/etc/passwd").and_then(|mut f| {
                let mut text = String::new();
                f.read_to_string(&mut text).map(|_| text)
            }),
            |text| format!("{} bytes", text.len()),
        ),
        "cwd" => outcome(std::fs::read_dir("."), |entries| format!("{} entries", entries.count())),
        "root" => outcome(std::fs::read_dir("/"), |entries| format!("{} entries", entries.count())),
        "env" => {
            let names: Vec<String> = std::env::vars_os().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
            format!("ok: {} variables{}{}", names.len(), if names.is_empty() { "" } else { ": " }, names.join(", "))
        }
        "net" => outcome(
            "127.0.0.1:9"
                .parse()
                .map_err(|e: std::net::AddrParseError| std::io::Error::other(e))
                .and_then(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1))),
            |_| "connected".to_owned(),
        ),
        "dns" => outcome(("example.com", 80).to_socket_addrs(), |addrs| format!("{} addresses", addrs.count())),
        _ => unreachable!("invariant: only ports of ATTEMPTS are probed"),
    }
}

impl Plugin for Probe {
    fn describe() -> Descriptor {
        let mut builder = Descriptor::builder("test:probe", env!("CARGO_PKG_VERSION"), StageKind::Generator)
            .summary("tries to escape the sandbox and reports what happened");
        for (port, what) in ATTEMPTS {
            builder = builder.output(port, "text", format!("the outcome of trying to {what}"));
        }
        builder.build()
    }

    fn run(_ctx: &Context, _inputs: &Inputs, _config: &Config) -> Result<Outputs, StageError> {
        Ok(ATTEMPTS.iter().fold(Outputs::new(), |out, (port, _)| out.text(*port, attempt(port))))
    }
}

export_plugin!(Probe);
