//! Whether a live object still holds what the operator applied: drift is a field the operator
//! sets that now has another value (a readiness gate removed by hand, an image edited with
//! `kubectl set image`). What the API server or other field managers add is not drift.

use serde_json::Value;

/// The first field of `desired` that `live` lacks or holds another value in, as a path
/// (`spec.template.spec.readinessGates`); None when `live` holds all of `desired`.
pub fn drifted(desired: &Value, live: &Value) -> Option<String> {
    difference(live, desired, &mut Vec::new())
}

/// Where `live` does not hold `desired`; `path` is where both are.
fn difference(live: &Value, desired: &Value, path: &mut Vec<String>) -> Option<String> {
    let here = |path: &Vec<String>| Some(path.join("."));
    match (desired, live) {
        // Nothing said; the API server drops empty fields.
        (Value::Null, _) => None,
        (Value::Object(d), _) if d.is_empty() => {
            (!(live.is_null() || live.is_object())).then(|| path.join("."))
        }
        (Value::Array(d), _) if d.is_empty() => {
            (!(live.is_null() || live.is_array())).then(|| path.join("."))
        }
        (Value::Object(d), Value::Object(l)) => d.iter().find_map(|(key, want)| {
            path.push(key.clone());
            let found = difference(l.get(key).unwrap_or(&Value::Null), want, path);
            path.pop();
            found
        }),
        (Value::Array(d), Value::Array(l)) => d.iter().enumerate().find_map(|(i, want)| {
            path.push(i.to_string());
            let found = (!matched(l, want)).then(|| path.join("."));
            path.pop();
            found
        }),
        (Value::String(d), Value::String(l)) if d == l || same_quantity(d, l) => None,
        (Value::Number(d), Value::Number(l)) if d.as_f64() == l.as_f64() => None,
        (d, l) if d == l => None,
        _ => here(path),
    }
}

/// Whether some element of `live` holds `want`: by `name` for named elements (containers,
/// ports, volumes), else any element (readiness gates, rules).
fn matched(live: &[Value], want: &Value) -> bool {
    let holds = |l: &Value| difference(l, want, &mut Vec::new()).is_none();
    match want.get("name") {
        Some(name) => live
            .iter()
            .find(|l| l.get("name") == Some(name))
            .is_some_and(holds),
        None => live.iter().any(holds),
    }
}

/// Resource quantities the API server writes back in canonical form (`0.5` as `500m`).
fn same_quantity(a: &str, b: &str) -> bool {
    matches!((quantity(a), quantity(b)), (Some(x), Some(y)) if (x - y).abs() <= f64::EPSILON * x.abs().max(1.0))
}

fn quantity(text: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((text, 1.0));
    // Only plain decimals: a name such as "e1" or "inf" is not a quantity.
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    number.parse::<f64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({
            "metadata": {"name": "demo", "labels": {"app": "demo"}, "annotations": {}},
            "spec": {"replicas": 2, "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "demo"}},
                "spec": {
                    "readinessGates": [{"conditionType": "mcp-operator.dev/mcp-handshake"}],
                    "containers": [{"name": "mcp", "image": "demo:1", "ports": [{"name": "mcp", "containerPort": 8080}],
                                    "resources": {"limits": {"cpu": "0.5", "memory": "1Gi"}}}],
                    "volumes": [],
                },
            }},
        })
    }

    #[test]
    fn what_the_api_server_and_others_add_is_not_drift() {
        let desired = deployment();
        let mut live = desired.clone();
        live["metadata"]["uid"] = json!("u-1");
        live["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "3"});
        live["metadata"]["labels"]["team"] = json!("a");
        let container = &mut live["spec"]["template"]["spec"]["containers"][0];
        container["terminationMessagePath"] = json!("/dev/termination-log");
        container["ports"][0]["protocol"] = json!("TCP");
        container["resources"]["limits"]["cpu"] = json!("500m");
        // A sidecar another controller added, and the template's empty fields dropped.
        let spec = &mut live["spec"]["template"]["spec"];
        spec["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "proxy", "image": "proxy:1"}));
        spec.as_object_mut().unwrap().remove("volumes");
        live["spec"]["template"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("creationTimestamp");
        assert_eq!(drifted(&desired, &live), None);
    }

    #[test]
    fn fields_the_operator_sets_changed_by_hand_are_drift() {
        let desired = deployment();
        let mut gate_removed = desired.clone();
        gate_removed["spec"]["template"]["spec"]["readinessGates"] = json!([]);
        assert_eq!(
            drifted(&desired, &gate_removed).as_deref(),
            Some("spec.template.spec.readinessGates.0")
        );
        let mut image_edited = desired.clone();
        image_edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("demo:2");
        assert_eq!(
            drifted(&desired, &image_edited).as_deref(),
            Some("spec.template.spec.containers.0")
        );
        let mut scaled = desired.clone();
        scaled["spec"]["replicas"] = json!(5);
        assert_eq!(drifted(&desired, &scaled).as_deref(), Some("spec.replicas"));
        let mut limit_raised = desired.clone();
        limit_raised["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] =
            json!("2Gi");
        assert!(drifted(&desired, &limit_raised).is_some());
        let mut label_removed = desired.clone();
        label_removed["metadata"]["labels"] = json!({});
        assert_eq!(
            drifted(&desired, &label_removed).as_deref(),
            Some("metadata.labels.app")
        );
    }

    #[test]
    fn quantities_compare_by_value_and_names_are_not_quantities() {
        assert!(same_quantity("0.5", "500m"));
        assert!(same_quantity("1Gi", "1024Mi"));
        assert!(!same_quantity("1G", "1Gi"));
        assert_eq!(quantity("mcp"), None);
        assert_eq!(quantity("e1"), None);
        assert_eq!(quantity("m"), None);
    }
}
