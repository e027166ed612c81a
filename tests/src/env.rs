//! `TestEnv`: the whole environment, started in order and stopped in reverse, with its logs
//! printed when a test panics while it is up.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::binaries::Binaries;
use crate::certs::Pki;
use crate::controlplane::{ControlPlane, Layout};
use crate::kubelet::server::ServingTls;
use crate::kubelet::{self, Kubelet, KubeletConfig};
use crate::process::{Supervised, log_tail};
use crate::sandbox::{GATEWAY, Sandbox};
use crate::{Error, ImageMap};

/// Options of a [`TestEnv`].
#[derive(Debug, Default)]
pub struct TestEnvBuilder {
    images: ImageMap,
    dir: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
    restart_backoff: Option<Duration>,
}

impl TestEnvBuilder {
    /// Maps `image` to a local command (its entrypoint).
    pub fn image<S: Into<String>>(
        mut self,
        image: impl Into<String>,
        entrypoint: impl IntoIterator<Item = S>,
    ) -> Self {
        self.images
            .insert(image, entrypoint.into_iter().map(Into::into).collect());
        self
    }

    /// Declares that `image` contains `host_file` at `path_in_image`.
    pub fn image_file(
        mut self,
        image: impl Into<String>,
        path_in_image: impl Into<PathBuf>,
        host_file: impl Into<PathBuf>,
    ) -> Self {
        self.images.insert_file(image, path_in_image, host_file);
        self
    }

    pub fn images(mut self, images: ImageMap) -> Self {
        self.images = images;
        self
    }

    /// Keeps the environment's files (PKI, etcd data, logs) in `dir` instead of a temporary
    /// directory that is removed when the environment stops.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Also writes the admin kubeconfig to `path`.
    pub fn kubeconfig(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig = Some(path.into());
        self
    }

    /// The first delay of a crashing container's restart back-off (kubelet's is 10 s).
    pub fn restart_backoff(mut self, initial: Duration) -> Self {
        self.restart_backoff = Some(initial);
        self
    }

    pub async fn start(self) -> Result<TestEnv, Error> {
        TestEnv::start_with(self).await
    }
}

/// A running environment. Dropping it stops every process it started.
pub struct TestEnv {
    client: Client,
    kubeconfig: PathBuf,
    dir: PathBuf,
    port: u16,
    pki: Pki,
    control_plane: Option<ControlPlane>,
    kubelet: Option<Kubelet>,
    started_in: Duration,
    _tempdir: Option<tempfile::TempDir>,
    // Last: the sandbox thread's end kills whatever the steps above left running.
    sandbox: Sandbox,
}

impl TestEnv {
    pub fn builder() -> TestEnvBuilder {
        TestEnvBuilder::default()
    }

    /// An environment with an empty image map.
    pub async fn start() -> Result<Self, Error> {
        Self::builder().start().await
    }

    async fn start_with(opts: TestEnvBuilder) -> Result<Self, Error> {
        let begin = Instant::now();
        let bins = Binaries::locate()?;
        let (tempdir, dir) = match &opts.dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("mcp-testenv-")
                    .tempdir()
                    .map_err(|e| Error::io("temporary directory", e))?;
                let path = t.path().to_path_buf();
                (Some(t), path)
            }
        };
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))?;

        // The forwarded port is picked on the host; the API server takes the same number inside.
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| Error::io("API server port", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io("API server port", e))?
            .port();
        let pki = Pki::generate(
            &dir,
            &[
                Ipv4Addr::LOCALHOST.into(),
                GATEWAY.into(),
                Ipv4Addr::new(10, 96, 0, 1).into(),
            ],
            &[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )?;
        let kubeconfig = dir.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &pki, port)?;
        if let Some(user_path) = &opts.kubeconfig {
            write_kubeconfig(user_path, &pki, port)?;
        }

        let sandbox = Sandbox::start(&logs.join("testenv.log"))?;
        sandbox.forward(listener, SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        let layout = Layout {
            dir: dir.clone(),
            logs: logs.clone(),
            pki: pki.clone(),
            kubeconfig: kubeconfig.clone(),
            port,
            bins: bins.clone(),
        };
        let mut env = TestEnv {
            client: client_for(&kubeconfig).await?,
            kubeconfig: opts.kubeconfig.clone().unwrap_or(kubeconfig.clone()),
            dir,
            port,
            pki: pki.clone(),
            control_plane: None,
            kubelet: None,
            started_in: Duration::ZERO,
            _tempdir: tempdir,
            sandbox,
        };
        let l = layout.clone();
        let (etcd, apiserver) = env
            .sandbox
            .run(async move { ControlPlane::start_apiserver(&l).await })
            .await?;
        let l = layout.clone();
        let controller_manager = env
            .sandbox
            .run(async move { ControlPlane::start_controller_manager(&l) })
            .await?;
        env.control_plane = Some(ControlPlane {
            etcd,
            apiserver,
            controller_manager,
            logs: logs.clone(),
        });
        env.wait_until_api_ready().await?;

        let config = KubeletConfig {
            kubeconfig: layout.kubeconfig.clone(),
            api_port: port,
            images: opts.images,
            dir: layout.dir.join("pods"),
            log_dir: logs.join("pods"),
            restart_backoff: opts.restart_backoff.unwrap_or(kubelet::RESTART_BACKOFF),
            tls: ServingTls {
                cert: pki.kubelet_serving_cert.clone(),
                key: pki.kubelet_serving_key.clone(),
                client_ca: pki.ca_cert.clone(),
            },
        };
        env.kubelet = Some(env.sandbox.run(Kubelet::start(config)).await?);
        env.wait_for_default_service_account().await?;
        env.started_in = begin.elapsed();
        Ok(env)
    }

    /// An admin client (through the port forwarded to the host's loopback).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The admin kubeconfig: usable from the host and from inside the environment.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kubeconfig for `user` in `groups` (a client certificate of the environment's CA), so that
    /// a process's API requests carry its own name in the audit log. Works inside and outside.
    pub fn kubeconfig_for(&self, user: &str, groups: &[&str]) -> Result<PathBuf, Error> {
        let (cert_pem, key_pem) = self.pki.user_certificate(user, groups)?;
        let cert = self.dir.join(format!("{user}.crt"));
        let key = self.dir.join(format!("{user}.key"));
        std::fs::write(&cert, cert_pem).map_err(|e| Error::io(&cert, e))?;
        std::fs::write(&key, key_pem).map_err(|e| Error::io(&key, e))?;
        let path = self.dir.join(format!("{user}.kubeconfig"));
        write_user_kubeconfig(&path, &self.pki, self.port, &cert, &key)?;
        Ok(path)
    }

    /// The directory holding the PKI, etcd's data and `logs/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The API server's port on 127.0.0.1 (outside and inside the environment alike).
    pub fn api_port(&self) -> u16 {
        self.port
    }

    /// How long `start` took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The path of the environment's network namespace.
    pub fn netns_path(&self) -> &Path {
        self.sandbox.netns_path()
    }

    /// The API server's audit log: one JSON object per write request.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("logs/audit.log")
    }

    /// A TCP connection from inside the environment, e.g. to a pod IP.
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
        self.sandbox.connect(addr).await
    }

    /// `GET http://{addr}{path}` from inside the environment: the status and the body.
    pub async fn http_get(&self, addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
        self.http_request(addr, "GET", path, &[], "").await
    }

    /// One HTTP/1.1 request to `http://{addr}{path}` from inside the environment (for example
    /// a JSON-RPC POST to a pod): the status and the body.
    pub async fn http_request(
        &self,
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        let stream = self.connect(addr).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(std::io::Error::other)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(std::io::Error::other)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// A command that runs inside the environment's network (pod IPs reachable, the API server
    /// at `127.0.0.1:{api_port}`), with `KUBECONFIG` set.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        join_network_command(self.netns_path(), program, &self.kubeconfig)
    }

    /// Starts `program` inside the environment (pod IPs reachable, `KUBECONFIG` set), with its
    /// output in `logs/{name}.log`; it is stopped with the environment if still running.
    pub async fn spawn(
        &self,
        name: &str,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Supervised, Error> {
        let mut cmd = crate::sandbox::command(program.as_ref());
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .envs(envs.iter().copied());
        let log = self.dir.join("logs").join(format!("{name}.log"));
        let name = name.to_string();
        self.sandbox
            .run(async move { Supervised::spawn(name, cmd, &log) })
            .await
    }

    /// The last lines of every log of the environment.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        let mut files: Vec<PathBuf> = walk(&self.dir.join("logs"));
        files.sort();
        for file in files {
            if file.ends_with("audit.log") {
                continue;
            }
            out += &format!(
                "----- {} -----\n{}\n",
                file.display(),
                log_tail(&file, lines)
            );
        }
        out
    }

    async fn wait_until_api_ready(&self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("static request");
            match self.client.request_text(req).await {
                Ok(body) if body.trim() == "ok" => return Ok(()),
                _ if Instant::now() > deadline => {
                    return Err(Error::Timeout(format!(
                        "kube-apiserver /readyz\n{}",
                        self.log_tails(30)
                    )));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The ServiceAccount admission plugin rejects pods until the controller-manager has created
    /// the namespace's `default` ServiceAccount.
    async fn wait_for_default_service_account(&self) -> Result<(), Error> {
        let sas: Api<ServiceAccount> = Api::namespaced(self.client.clone(), "default");
        let deadline = Instant::now() + Duration::from_secs(60);
        while sas.get_opt("default").await?.is_none() {
            if Instant::now() > deadline {
                return Err(Error::Timeout(format!(
                    "the default ServiceAccount\n{}",
                    self.log_tails(30)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Stops pods, then the control plane.
    fn shutdown(&mut self) {
        let kubelet = self.kubelet.take();
        let control_plane = self.control_plane.take();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        self.sandbox.handle().spawn(async move {
            if let Some(kubelet) = kubelet {
                kubelet.stop().await;
            }
            if let Some(cp) = control_plane {
                cp.stop().await;
            }
            let _ = done_tx.send(());
        });
        let _ = done_rx.recv_timeout(Duration::from_secs(60));
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test environment logs ({}):\n{}",
                self.dir.display(),
                self.log_tails(40)
            );
            // Keep the files of a failed run for inspection.
            if let Some(t) = self._tempdir.take() {
                let _ = t.keep();
            }
        }
        self.shutdown();
    }
}

/// A command that joins the network namespace at `netns` before it runs.
pub fn join_network_command(
    netns: &Path,
    program: impl AsRef<std::ffi::OsStr>,
    kubeconfig: &Path,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.env("KUBECONFIG", kubeconfig);
    let netns = netns.to_path_buf();
    // SAFETY: the file is opened before fork; the child only makes the setns syscall.
    let file = std::fs::File::open(&netns);
    unsafe {
        cmd.pre_exec(move || {
            let file = file
                .as_ref()
                .map_err(|e| std::io::Error::new(e.kind(), "netns"))?;
            if libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

async fn client_for(kubeconfig: &Path) -> Result<Client, Error> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Writes a kubeconfig (as JSON, which is YAML) for the admin user.
fn write_kubeconfig(path: &Path, pki: &Pki, port: u16) -> Result<(), Error> {
    write_user_kubeconfig(path, pki, port, &pki.admin_cert, &pki.admin_key)
}

fn write_user_kubeconfig(
    path: &Path,
    pki: &Pki,
    port: u16,
    cert: &Path,
    key: &Path,
) -> Result<(), Error> {
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "testenv", "cluster": {
            "server": format!("https://127.0.0.1:{port}"),
            "certificate-authority": pki.ca_cert,
        }}],
        "users": [{"name": "admin", "user": {
            "client-certificate": cert,
            "client-key": key,
        }}],
        "contexts": [{"name": "testenv", "context": {"cluster": "testenv", "user": "admin"}}],
        "current-context": "testenv",
    });
    let text = serde_json::to_string_pretty(&config).expect("JSON value serializes");
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        // `{container}.log` links to a file the walk prints anyway.
        .filter(|e| !e.file_type().is_ok_and(|t| t.is_symlink()))
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}
