//! `testenv`: the test environment for people and scripts.
//!
//! `testenv up --kubeconfig PATH [--image-map IMAGE=COMMAND]... [--image-file IMAGE=PATH=FILE]...
//! [--ingress-port PORT | --no-ingress]` starts the control plane, kube-proxy, cluster DNS, the
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
        } => up(
            kubeconfig,
            &image_map,
            &image_file,
            dir,
            (!no_ingress).then_some(ingress_port),
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

fn up(
    kubeconfig: PathBuf,
    image_map: &[String],
    image_files: &[String],
    dir: Option<PathBuf>,
    ingress_port: Option<u16>,
) -> anyhow::Result<()> {
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
        let env = builder
            .start()
            .await
            .context("starting the test environment")?;
        let marker = netns_file(&kubeconfig);
        std::fs::write(
            &marker,
            format!(
                "{}\n{}\n",
                env.netns_path().display(),
                env.resolv_conf().display()
            ),
        )?;
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
        let _ = std::fs::remove_file(&marker);
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
