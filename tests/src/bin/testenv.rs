//! `testenv`: the test environment for people and scripts.
//!
//! `testenv up --kubeconfig PATH [--image-map IMAGE=COMMAND]... [--image-file IMAGE=PATH=FILE]...
//! [--ingress-port PORT | --no-ingress] [--user NAME=PATH]... [--audit-reads-of USER]...
//! [--controller-manager-qps N]` starts the control plane, kube-proxy, cluster DNS, the
//! process kubelet and the ingress controller, prints `ready` once `kubectl --kubeconfig
//! PATH` works, and stops cleanly on SIGINT or SIGTERM. `testenv exec --kubeconfig PATH --
//! COMMAND...` runs a command inside that environment's network, where pod IPs and ClusterIPs
//! are reachable and cluster names (`NAME.NAMESPACE.svc`) resolve.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use mcp_testenv::{ImageMap, TestEnv};

#[derive(Parser)]
#[command(
    version,
    about = "A real Kubernetes control plane whose pods run as local processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the environment and keep it up until SIGINT or SIGTERM.
    Up {
        /// Where to write the admin kubeconfig.
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: PathBuf,
        /// IMAGE=COMMAND: run containers of IMAGE as COMMAND (its entrypoint). Repeatable.
        #[arg(long = "image-map", value_name = "IMAGE=COMMAND")]
        image_map: Vec<String>,
        /// IMAGE=/PATH/IN/IMAGE=HOST_FILE: containers of IMAGE see HOST_FILE at that path
        /// (read-only). Repeatable.
        #[arg(long = "image-file", value_name = "IMAGE=PATH=FILE")]
        image_file: Vec<String>,
        /// Keep the environment's files (PKI, etcd data, logs) here instead of a temporary
        /// directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The loopback port of the ingress controller (Traefik): an app with
        /// `ingress.host: NAME.localhost` answers at http://NAME.localhost:PORT/. 0 picks a free
        /// port; the port is printed as `ingress http://127.0.0.1:PORT`.
        #[arg(long, default_value_t = 0)]
        ingress_port: u16,
        /// Start without the ingress controller.
        #[arg(long, conflicts_with = "ingress_port")]
        no_ingress: bool,
        /// NAME=PATH: also write a kubeconfig for the user NAME (in system:masters) to PATH, so
        /// that a process's requests carry its own name in the audit log (`testenv exec
        /// --kubeconfig PATH` works with it too). Repeatable.
        #[arg(long = "user", value_name = "NAME=PATH")]
        users: Vec<String>,
        /// Also record USER's read requests (get, list, watch) in the audit log
        /// (`logs/audit.log`), not only writes. Repeatable.
        #[arg(long = "audit-reads-of", value_name = "USER")]
        audit_reads_of: Vec<String>,
        /// kube-controller-manager's --kube-api-qps (burst twice that); its default of 20 makes
        /// the Deployment and ReplicaSet controllers the bottleneck with thousands of objects.
        #[arg(long, value_name = "N")]
        controller_manager_qps: Option<u32>,
    },
    /// Run COMMAND inside the environment that `up` started with this kubeconfig.
    Exec {
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: PathBuf,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up {
            kubeconfig,
            image_map,
            image_file,
            dir,
            ingress_port,
            no_ingress,
            users,
            audit_reads_of,
            controller_manager_qps,
        } => up(
            kubeconfig,
            &image_map,
            &image_file,
            dir,
            (!no_ingress).then_some(ingress_port),
            &users,
            Extra {
                audit_reads_of,
                controller_manager_qps,
            },
        ),
        Command::Exec {
            kubeconfig,
            command,
        } => exec(&kubeconfig, &command),
    }
}

/// The file beside the kubeconfig that tells `exec` where the environment's network is (first
/// line) and its resolver configuration (second line).
fn netns_file(kubeconfig: &Path) -> PathBuf {
    let mut name = kubeconfig.as_os_str().to_owned();
    name.push(".netns");
    PathBuf::from(name)
}

/// Settings of the control plane that benchmarks change.
struct Extra {
    audit_reads_of: Vec<String>,
    controller_manager_qps: Option<u32>,
}

fn up(
    kubeconfig: PathBuf,
    image_map: &[String],
    image_files: &[String],
    dir: Option<PathBuf>,
    ingress_port: Option<u16>,
    users: &[String],
    extra: Extra,
) -> anyhow::Result<()> {
    let users = users
        .iter()
        .map(|spec| -> anyhow::Result<(String, PathBuf)> {
            match spec.split_once('=') {
                Some((name, path)) if !name.is_empty() && !path.is_empty() => {
                    Ok((name.to_owned(), std::path::absolute(path)?))
                }
                _ => bail!("--user {spec}: expected NAME=PATH"),
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut images = ImageMap::default();
    for spec in image_map {
        images.insert_spec(spec)?;
    }
    for spec in image_files {
        images.insert_file_spec(spec)?;
    }
    let kubeconfig = std::path::absolute(&kubeconfig)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let mut builder = TestEnv::builder().images(images).kubeconfig(&kubeconfig);
        if let Some(dir) = dir {
            std::fs::create_dir_all(&dir)?;
            builder = builder.dir(std::path::absolute(dir)?);
        }
        if let Some(port) = ingress_port {
            builder = builder.ingress(port);
        }
        for user in extra.audit_reads_of {
            builder = builder.audit_reads_of(user);
        }
        if let Some(qps) = extra.controller_manager_qps {
            builder = builder.controller_manager_qps(qps);
        }
        let env = builder
            .start()
            .await
            .context("starting the test environment")?;
        let marker_text = format!(
            "{}\n{}\n",
            env.netns_path().display(),
            env.resolv_conf().display()
        );
        let mut markers = vec![netns_file(&kubeconfig)];
        for (name, path) in &users {
            let made = env
                .kubeconfig_for(name, &["system:masters"])
                .with_context(|| format!("a kubeconfig for {name}"))?;
            std::fs::copy(&made, path).with_context(|| format!("writing {}", path.display()))?;
            markers.push(netns_file(path));
        }
        for marker in &markers {
            std::fs::write(marker, &marker_text)?;
        }
        eprintln!(
            "control plane up in {:.1}s; files in {}",
            env.started_in().as_secs_f64(),
            env.dir().display()
        );
        if let Some(port) = env.ingress_port() {
            println!("ingress http://127.0.0.1:{port}");
        }
        println!("ready");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("stopping");
        for marker in &markers {
            let _ = std::fs::remove_file(marker);
        }
        drop(env);
        anyhow::Ok(())
    })
}

fn exec(kubeconfig: &Path, command: &[String]) -> anyhow::Result<()> {
    let marker = netns_file(&std::path::absolute(kubeconfig)?);
    let text = std::fs::read_to_string(&marker).with_context(|| {
        format!(
            "no environment is up for {} (no {})",
            kubeconfig.display(),
            marker.display()
        )
    })?;
    let mut lines = text.lines();
    let netns = lines.next().context("empty environment marker")?;
    let resolv_conf = lines.next().map(Path::new);
    let Some((program, args)) = command.split_first() else {
        bail!("no command given");
    };
    let mut cmd =
        mcp_testenv::join_network_command(Path::new(netns), resolv_conf, program, kubeconfig);
    let err = cmd.args(args).exec();
    bail!("cannot run {program}: {err}")
}
