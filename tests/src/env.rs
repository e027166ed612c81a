//! `TestEnv`: the whole environment, started in order and stopped in reverse, with its logs
//! printed when a test panics while it is up.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
use crate::{dns, ingress, kube_proxy};

/// Options of a [`TestEnv`].
#[derive(Debug, Default)]
pub struct TestEnvBuilder {
    images: ImageMap,
    dir: Option<PathBuf>,
    kubeconfig: Option<PathBuf>,
    restart_backoff: Option<Duration>,
    /// The loopback port of the ingress controller, if one is wanted (0: any free port).
    ingress_port: Option<u16>,
    audit_reads_of: Vec<String>,
    controller_manager_qps: Option<u32>,
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

    /// Also installs the ingress controller (Traefik, with the Gateway API CRDs) and forwards
    /// its entry point to `127.0.0.1:port` (0: a free port; see [`TestEnv::ingress_port`]).
    pub fn ingress(mut self, port: u16) -> Self {
        self.ingress_port = Some(port);
        self
    }

    /// Also records `user`'s read requests (get, list, watch) in the audit log, so that every
    /// request of one client can be counted (benchmarks; tests count writes only).
    pub fn audit_reads_of(mut self, user: impl Into<String>) -> Self {
        self.audit_reads_of.push(user.into());
        self
    }

    /// Raises kube-controller-manager's client rate limit (`--kube-api-qps`, default 20, and a
    /// burst of twice that), so that its controllers keep up with thousands of objects.
    pub fn controller_manager_qps(mut self, qps: u32) -> Self {
        self.controller_manager_qps = Some(qps);
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
    layout: Layout,
    kube_proxy: Option<Supervised>,
    kubelet: Option<Kubelet>,
    ingress_port: Option<u16>,
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
                crate::controlplane::KUBERNETES_SERVICE_IP.into(),
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
            audit_reads_of: opts.audit_reads_of.clone(),
            controller_manager_qps: opts.controller_manager_qps,
        };
        let mut env = TestEnv {
            client: client_for(&kubeconfig).await?,
            kubeconfig: opts.kubeconfig.clone().unwrap_or(kubeconfig.clone()),
            dir,
            port,
            pki: pki.clone(),
            control_plane: None,
            layout: layout.clone(),
            kube_proxy: None,
            kubelet: None,
            ingress_port: None,
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

        // The cluster's own add-ons run as pods, their images mapped to the binaries built with
        // the control plane.
        let mut images = opts.images;
        images.insert(dns::COREDNS_IMAGE, vec![bins.coredns.display().to_string()]);
        images.insert(
            ingress::TRAEFIK_IMAGE,
            vec![bins.traefik.display().to_string()],
        );
        let config = KubeletConfig {
            kubeconfig: layout.kubeconfig.clone(),
            images,
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
        // kube-proxy reads its node's addresses, so it starts once the kubelet registered it.
        let proxy_kubeconfig = env.kubeconfig_for(kube_proxy::USER, &[])?;
        let (binary, dir, log) = (
            bins.kube_proxy.clone(),
            env.dir.clone(),
            logs.join("kube-proxy.log"),
        );
        env.kube_proxy = Some(
            env.sandbox
                .run(async move { kube_proxy::start(&binary, &proxy_kubeconfig, &dir, &log).await })
                .await?,
        );

        env.wait_for_default_service_account().await?;
        dns::install(&env.client).await?;
        dns::write(&env.dir, "resolv.conf", &dns::environment_resolv_conf())?;
        if let Some(port) = opts.ingress_port {
            ingress::install(&env.client).await?;
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .map_err(|e| Error::io(format!("ingress port 127.0.0.1:{port}"), e))?;
            let port = listener
                .local_addr()
                .map_err(|e| Error::io("ingress port", e))?
                .port();
            env.sandbox.forward(listener, ingress::SERVICE)?;
            env.ingress_port = Some(port);
        }
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

    /// The loopback port that reaches the ingress controller's entry point, if the environment
    /// has one ([`TestEnvBuilder::ingress`]): `http://NAME.localhost:PORT/` is the Ingress or
    /// HTTPRoute for host `NAME.localhost`.
    pub fn ingress_port(&self) -> Option<u16> {
        self.ingress_port
    }

    /// How long `start` took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The `/etc/resolv.conf` of commands run inside the environment ([`TestEnv::command`],
    /// `testenv exec`): cluster DNS, searching the `default` namespace.
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
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

    /// A connection factory for `addr` inside the environment (a pod IP or a ClusterIP), for
    /// clients that open many connections ([`crate::mcp::Endpoint`]).
    pub fn connector(&self, addr: SocketAddr) -> crate::mcp::Connect {
        let handle = self.sandbox.handle().clone();
        std::sync::Arc::new(move || {
            Box::pin(crate::sandbox::connect_from(handle.clone(), addr))
                as futures::future::BoxFuture<'static, _>
        })
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
        let response =
            crate::http::request(stream, &addr.to_string(), method, path, headers, body).await?;
        Ok((response.status, response.body))
    }

    /// A command that runs inside the environment's network (pod IPs and ClusterIPs reachable,
    /// cluster names resolved, the API server at `127.0.0.1:{api_port}`), with `KUBECONFIG` set.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        join_network_command(
            self.netns_path(),
            Some(&self.resolv_conf()),
            program,
            &self.kubeconfig,
        )
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

    /// Stops kube-apiserver (SIGTERM, as a rolling control-plane upgrade does), keeps it down for
    /// `down`, starts it again on the same etcd and port, and waits until it is ready. Clients
    /// see their connections end and their watches break, as in a real restart.
    pub async fn restart_apiserver(&mut self, down: Duration) -> Result<(), Error> {
        let control_plane = self
            .control_plane
            .as_mut()
            .expect("the control plane runs while the environment does");
        control_plane
            .apiserver
            .terminate(Duration::from_secs(10))
            .await;
        tokio::time::sleep(down).await;
        let l = self.layout.clone();
        let apiserver = self
            .sandbox
            .run(async move { ControlPlane::start_kube_apiserver(&l).await })
            .await?;
        self.control_plane.as_mut().expect("still there").apiserver = apiserver;
        self.wait_until_api_ready().await
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
        let kube_proxy = self.kube_proxy.take();
        let control_plane = self.control_plane.take();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        self.sandbox.handle().spawn(async move {
            if let Some(kubelet) = kubelet {
                kubelet.stop().await;
            }
            if let Some(proxy) = kube_proxy {
                proxy.terminate(Duration::from_secs(5)).await;
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

/// A command that joins the network namespace at `netns` before it runs, with `KUBECONFIG` set
/// and, given `resolv_conf`, that file as its `/etc/resolv.conf` (in a mount namespace of its
/// own) so that cluster names resolve as they do in a pod.
pub fn join_network_command(
    netns: &Path,
    resolv_conf: Option<&Path>,
    program: impl AsRef<std::ffi::OsStr>,
    kubeconfig: &Path,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.env("KUBECONFIG", kubeconfig);
    // Opened and named before fork; the child only makes syscalls on them.
    let netns = std::fs::File::open(netns);
    let resolv_conf = resolv_conf.map(|path| {
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| std::io::Error::other("NUL in the resolv.conf path"))
    });
    // SAFETY: the closure makes plain syscalls on descriptors and strings prepared before fork.
    unsafe {
        cmd.pre_exec(move || {
            let netns = netns
                .as_ref()
                .map_err(|e| std::io::Error::new(e.kind(), "netns"))?;
            if libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(source) = &resolv_conf {
                let source = source
                    .as_ref()
                    .map_err(|e| std::io::Error::new(e.kind(), "resolv.conf"))?;
                bind_resolv_conf(source)?;
            }
            Ok(())
        });
    }
    cmd
}

/// Mounts `source` over `/etc/resolv.conf` in a new, private mount namespace (where `source` is
/// named: a bind mount cannot take its source from another mount namespace). Runs between fork
/// and exec.
fn bind_resolv_conf(source: &std::ffi::CStr) -> std::io::Result<()> {
    crate::sandbox::enter_private_mount_namespace()?;
    // SAFETY: a plain syscall with NUL-terminated paths.
    crate::sandbox::check(unsafe {
        libc::mount(
            source.as_ptr(),
            c"/etc/resolv.conf".as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    })
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
