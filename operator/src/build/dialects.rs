//! What each ingress controller needs to keep SSE streams open and sessions sticky, as data.
//!
//! The dialect is chosen from the IngressClass's `spec.controller` (or, when the IngressClass
//! cannot be read, from well-known class names). Each row lists annotations whose values are
//! computed from the app; a controller without a way to express a setting simply has no row
//! for it, and the Service's ClientIP affinity is what remains. User annotations are applied
//! after these and win.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::api::{McpApp, SessionAffinity};

/// Name of the cookie the ingress controller issues for cookie stickiness.
pub const AFFINITY_COOKIE: &str = "mcp-affinity";

/// AWS caps an ALB's idle timeout at 4000 seconds.
const ALB_MAX_IDLE_TIMEOUT_SECONDS: i32 = 4000;

/// One annotation whose value follows from the app.
struct Annotation {
    key: &'static str,
    value: fn(&McpApp) -> String,
}

/// Annotations that make one kind of session stickiness work with one controller.
struct Stickiness {
    affinity: SessionAffinity,
    on_ingress: &'static [Annotation],
    on_service: &'static [Annotation],
}

/// How an IngressClass's controller is recognised.
enum ControllerMatch {
    Exact(&'static str),
    /// HAProxy's controller name ends in a deployment-specific part.
    Prefix(&'static str),
}

/// One ingress controller's way of configuring what MCP over SSE needs.
pub struct IngressDialect {
    /// Short name used in docs and logs.
    pub name: &'static str,
    controller: Option<ControllerMatch>,
    /// Class names this controller is usually installed under.
    class_names: &'static [&'static str],
    /// Ingress annotations that keep long SSE streams open and unbuffered.
    stream: &'static [Annotation],
    sticky: &'static [Stickiness],
    /// Service annotations the controller needs regardless of stickiness.
    service: &'static [Annotation],
    /// GKE ignores `spec.ingressClassName` and reads the legacy class annotation instead.
    pub class_by_annotation: bool,
    /// GKE takes timeouts, stickiness and draining from a BackendConfig.
    pub backend_config: bool,
}

fn stream_timeout(app: &McpApp) -> String {
    app.spec.sse.stream_timeout_seconds.to_string()
}

fn stream_timeout_with_unit(app: &McpApp) -> String {
    format!("{}s", app.spec.sse.stream_timeout_seconds)
}

fn session_timeout(app: &McpApp) -> String {
    app.spec.session.timeout_seconds.to_string()
}

fn cookie_name(_: &McpApp) -> String {
    AFFINITY_COOKIE.to_owned()
}

fn enabled(_: &McpApp) -> String {
    "true".to_owned()
}

const INGRESS_NGINX: IngressDialect = IngressDialect {
    name: "ingress-nginx",
    controller: Some(ControllerMatch::Exact("k8s.io/ingress-nginx")),
    class_names: &["nginx"],
    stream: &[
        Annotation {
            key: "nginx.ingress.kubernetes.io/proxy-read-timeout",
            value: stream_timeout,
        },
        Annotation {
            key: "nginx.ingress.kubernetes.io/proxy-send-timeout",
            value: stream_timeout,
        },
        // Buffered responses would hold SSE events back until the buffer fills.
        Annotation {
            key: "nginx.ingress.kubernetes.io/proxy-buffering",
            value: |_| "off".into(),
        },
    ],
    sticky: &[
        Stickiness {
            affinity: SessionAffinity::ClientIp,
            on_ingress: &[Annotation {
                key: "nginx.ingress.kubernetes.io/upstream-hash-by",
                value: |_| "$remote_addr".into(),
            }],
            on_service: &[],
        },
        Stickiness {
            affinity: SessionAffinity::Cookie,
            on_ingress: &[
                Annotation {
                    key: "nginx.ingress.kubernetes.io/affinity",
                    value: |_| "cookie".into(),
                },
                // Persistent: a scale-up must not move existing sessions to the new pods.
                Annotation {
                    key: "nginx.ingress.kubernetes.io/affinity-mode",
                    value: |_| "persistent".into(),
                },
                Annotation {
                    key: "nginx.ingress.kubernetes.io/session-cookie-name",
                    value: cookie_name,
                },
                Annotation {
                    key: "nginx.ingress.kubernetes.io/session-cookie-max-age",
                    value: session_timeout,
                },
            ],
            on_service: &[],
        },
        Stickiness {
            affinity: SessionAffinity::Header,
            on_ingress: &[Annotation {
                key: "nginx.ingress.kubernetes.io/upstream-hash-by",
                value: |_| "$http_mcp_session_id".into(),
            }],
            on_service: &[],
        },
    ],
    service: &[],
    class_by_annotation: false,
    backend_config: false,
};

// Traefik streams SSE unbuffered and its timeouts live in the entry point's static
// configuration, so only stickiness is set; it has cookie stickiness only.
const TRAEFIK_COOKIE: &[Annotation] = &[
    Annotation {
        key: "traefik.ingress.kubernetes.io/service.sticky.cookie",
        value: enabled,
    },
    Annotation {
        key: "traefik.ingress.kubernetes.io/service.sticky.cookie.name",
        value: cookie_name,
    },
    Annotation {
        key: "traefik.ingress.kubernetes.io/service.sticky.cookie.maxage",
        value: session_timeout,
    },
    Annotation {
        key: "traefik.ingress.kubernetes.io/service.sticky.cookie.httponly",
        value: enabled,
    },
];

const TRAEFIK: IngressDialect = IngressDialect {
    name: "traefik",
    controller: Some(ControllerMatch::Exact("traefik.io/ingress-controller")),
    class_names: &["traefik"],
    stream: &[],
    sticky: &[
        Stickiness {
            affinity: SessionAffinity::ClientIp,
            on_ingress: &[],
            on_service: TRAEFIK_COOKIE,
        },
        Stickiness {
            affinity: SessionAffinity::Cookie,
            on_ingress: &[],
            on_service: TRAEFIK_COOKIE,
        },
        Stickiness {
            affinity: SessionAffinity::Header,
            on_ingress: &[],
            on_service: TRAEFIK_COOKIE,
        },
    ],
    service: &[],
    class_by_annotation: false,
    backend_config: false,
};

const HAPROXY: IngressDialect = IngressDialect {
    name: "haproxy",
    controller: Some(ControllerMatch::Prefix("haproxy.org/ingress-controller")),
    class_names: &["haproxy"],
    // HAProxy closes a server connection idle for 50 s by default.
    stream: &[Annotation {
        key: "haproxy.org/timeout-server",
        value: stream_timeout_with_unit,
    }],
    sticky: &[
        Stickiness {
            affinity: SessionAffinity::ClientIp,
            on_ingress: &[Annotation {
                key: "haproxy.org/load-balance",
                value: |_| "source".into(),
            }],
            on_service: &[],
        },
        Stickiness {
            affinity: SessionAffinity::Cookie,
            on_ingress: &[],
            on_service: &[Annotation {
                key: "haproxy.org/cookie-persistence",
                value: cookie_name,
            }],
        },
        Stickiness {
            affinity: SessionAffinity::Header,
            on_ingress: &[Annotation {
                key: "haproxy.org/load-balance",
                value: |_| "hdr(Mcp-Session-Id)".into(),
            }],
            on_service: &[],
        },
    ],
    service: &[],
    class_by_annotation: false,
    backend_config: false,
};

// An ALB sticks by its own cookie only; the cookie needs IP targets.
const ALB_STICKY: &[Annotation] = &[Annotation {
    key: "alb.ingress.kubernetes.io/target-group-attributes",
    value: |app| {
        format!(
            "stickiness.enabled=true,stickiness.type=lb_cookie,stickiness.lb_cookie.duration_seconds={}",
            app.spec.session.timeout_seconds
        )
    },
}];

const AWS_ALB: IngressDialect = IngressDialect {
    name: "aws-alb",
    controller: Some(ControllerMatch::Exact("ingress.k8s.aws/alb")),
    class_names: &["alb"],
    stream: &[
        Annotation {
            key: "alb.ingress.kubernetes.io/load-balancer-attributes",
            value: |app| {
                let seconds = app
                    .spec
                    .sse
                    .stream_timeout_seconds
                    .min(ALB_MAX_IDLE_TIMEOUT_SECONDS);
                format!("idle_timeout.timeout_seconds={seconds}")
            },
        },
        // Pods as targets: stickiness and the handshake readiness gate then reach the pod itself.
        Annotation {
            key: "alb.ingress.kubernetes.io/target-type",
            value: |_| "ip".into(),
        },
        // The ALB health check sends a plain GET; an MCP endpoint answers that with 4xx.
        Annotation {
            key: "alb.ingress.kubernetes.io/healthcheck-path",
            value: |app| app.spec.serving_path().to_owned(),
        },
        Annotation {
            key: "alb.ingress.kubernetes.io/success-codes",
            value: |_| "200-499".into(),
        },
    ],
    sticky: &[
        Stickiness {
            affinity: SessionAffinity::ClientIp,
            on_ingress: ALB_STICKY,
            on_service: &[],
        },
        Stickiness {
            affinity: SessionAffinity::Cookie,
            on_ingress: ALB_STICKY,
            on_service: &[],
        },
        Stickiness {
            affinity: SessionAffinity::Header,
            on_ingress: ALB_STICKY,
            on_service: &[],
        },
    ],
    service: &[],
    class_by_annotation: false,
    backend_config: false,
};

const GCE: IngressDialect = IngressDialect {
    name: "gce",
    controller: Some(ControllerMatch::Exact("k8s.io/ingress-gce")),
    class_names: &["gce", "gce-internal"],
    stream: &[],
    sticky: &[],
    service: &[
        Annotation {
            key: "cloud.google.com/backend-config",
            value: |app| format!(r#"{{"default":"{}"}}"#, app.name_any()),
        },
        // Container-native load balancing: traffic goes to pods, which the readiness gate guards.
        Annotation {
            key: "cloud.google.com/neg",
            value: |_| r#"{"ingress":true}"#.into(),
        },
    ],
    class_by_annotation: true,
    backend_config: true,
};

/// Any other controller: a plain Ingress, stickiness by the Service only. Set the controller's
/// timeout annotations through `spec.ingress.annotations`.
const GENERIC: IngressDialect = IngressDialect {
    name: "generic",
    controller: None,
    class_names: &[],
    stream: &[],
    sticky: &[],
    service: &[],
    class_by_annotation: false,
    backend_config: false,
};

const DIALECTS: &[&IngressDialect] = &[&INGRESS_NGINX, &TRAEFIK, &HAPROXY, &AWS_ALB, &GCE];

/// The dialect for an IngressClass: by its `spec.controller` when known, else by its name,
/// else the generic one.
pub fn resolve_dialect(
    controller: Option<&str>,
    class_name: Option<&str>,
) -> &'static IngressDialect {
    let found = match (controller, class_name) {
        (Some(controller), _) => DIALECTS.iter().find(|d| d.serves(controller)),
        (None, Some(class)) => DIALECTS.iter().find(|d| d.class_names.contains(&class)),
        (None, None) => None,
    };
    found.copied().unwrap_or(&GENERIC)
}

impl IngressDialect {
    fn serves(&self, controller: &str) -> bool {
        match self.controller {
            Some(ControllerMatch::Exact(name)) => controller == name,
            Some(ControllerMatch::Prefix(prefix)) => controller.starts_with(prefix),
            None => false,
        }
    }

    fn stickiness(&self, affinity: SessionAffinity) -> Option<&Stickiness> {
        self.sticky.iter().find(|s| s.affinity == affinity)
    }

    /// The operator's annotations for the app's Ingress (before the user's).
    pub fn ingress_annotations(&self, app: &McpApp) -> BTreeMap<String, String> {
        let sticky = self.stickiness(app.spec.session.affinity);
        evaluate(
            self.stream
                .iter()
                .chain(sticky.into_iter().flat_map(|s| s.on_ingress)),
            app,
        )
    }

    /// The operator's annotations for the app's Service.
    pub fn service_annotations(&self, app: &McpApp) -> BTreeMap<String, String> {
        let sticky = self.stickiness(app.spec.session.affinity);
        evaluate(
            self.service
                .iter()
                .chain(sticky.into_iter().flat_map(|s| s.on_service)),
            app,
        )
    }
}

fn evaluate<'a>(
    annotations: impl Iterator<Item = &'a Annotation>,
    app: &McpApp,
) -> BTreeMap<String, String> {
    annotations
        .map(|a| (a.key.to_owned(), (a.value)(app)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_is_chosen_by_the_ingress_class_controller() {
        for (controller, dialect) in [
            ("k8s.io/ingress-nginx", "ingress-nginx"),
            ("traefik.io/ingress-controller", "traefik"),
            ("haproxy.org/ingress-controller/haproxy", "haproxy"),
            ("haproxy.org/ingress-controller/internal", "haproxy"),
            ("ingress.k8s.aws/alb", "aws-alb"),
            ("k8s.io/ingress-gce", "gce"),
            ("example.com/unknown", "generic"),
        ] {
            assert_eq!(
                resolve_dialect(Some(controller), Some("nginx")).name,
                dialect,
                "{controller}"
            );
        }
    }

    #[test]
    fn without_a_readable_ingress_class_the_class_name_decides() {
        for (class, dialect) in [
            ("nginx", "ingress-nginx"),
            ("traefik", "traefik"),
            ("haproxy", "haproxy"),
            ("alb", "aws-alb"),
            ("gce", "gce"),
            ("gce-internal", "gce"),
            ("internal-lb", "generic"),
        ] {
            assert_eq!(resolve_dialect(None, Some(class)).name, dialect, "{class}");
        }
        assert_eq!(resolve_dialect(None, None).name, "generic");
    }

    #[test]
    fn every_dialect_states_stickiness_for_each_sticky_affinity_or_none_at_all() {
        for dialect in DIALECTS {
            let covered: Vec<SessionAffinity> = dialect.sticky.iter().map(|s| s.affinity).collect();
            assert!(
                covered.is_empty()
                    || [
                        SessionAffinity::ClientIp,
                        SessionAffinity::Cookie,
                        SessionAffinity::Header
                    ]
                    .iter()
                    .all(|a| covered.contains(a)),
                "{} covers only {covered:?}",
                dialect.name
            );
            assert!(
                !covered.contains(&SessionAffinity::None),
                "{}",
                dialect.name
            );
        }
    }
}
