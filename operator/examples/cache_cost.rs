//! Bytes of heap one cached object holds, in each form the operator could cache it, measured
//! with a counting allocator on objects as the API server served them (the files
//! `bench/scale.sh` writes: `app-0000.json`, an McpApp, and `app-0000-owned.json`, a List of its
//! Deployment, Service, Secrets, ControllerRevisions and pods; BENCHMARKS.md has the figures):
//!
//!     cargo run --release -p mcp-operator --example cache_cost -- WORK/app-0000.json WORK/app-0000-owned.json

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment};
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::DynamicObject;
use mcp_operator::api::McpApp;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The system allocator, counting the bytes it holds for the program.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap bytes one value made by `make` holds (the mean over 1,000 of them).
fn held<T>(make: impl Fn() -> T) -> isize {
    const COPIES: isize = 1000;
    let before = HELD.load(Ordering::Relaxed);
    let kept: Vec<T> = (0..COPIES).map(|_| make()).collect();
    let bytes = HELD.load(Ordering::Relaxed) - before - (kept.capacity() * size_of::<T>()) as isize;
    drop(kept);
    bytes / COPIES + size_of::<T>() as isize
}

fn parsed<T: DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).expect("the object parses")
}

/// One line: the object's JSON size and what each form holds.
fn row(what: &str, json: &str, forms: &[(&str, isize)]) {
    let forms: Vec<String> = forms.iter().map(|(f, b)| format!("{f} {b}")).collect();
    println!("| {what} | {} | {} |", json.len(), forms.join(" · "));
}

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: cache_cost FILE.json... (objects or Lists of objects)");
        std::process::exit(2);
    }
    println!("| object | JSON bytes | heap bytes held, by form |");
    println!("|---|---|---|");
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("the file reads");
        let value: Value = serde_json::from_str(&text).expect("the file is JSON");
        let objects = match value.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => vec![value],
        };
        for object in objects {
            let kind = object["kind"].as_str().unwrap_or("?").to_owned();
            let mut object = object;
            // The operator drops managedFields before caching anything.
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
            let json = object.to_string();
            let json = json.as_str();
            let dynamic = held(|| parsed::<DynamicObject>(json));
            let compact =
                held(|| mcp_operator::reconcile::Compact::from(parsed::<DynamicObject>(json)));
            let mut forms = vec![("parsed JSON", dynamic), ("compact", compact)];
            let typed = match kind.as_str() {
                "Deployment" => Some(held(|| parsed::<Deployment>(json))),
                "Service" => Some(held(|| parsed::<Service>(json))),
                "Secret" => Some(held(|| parsed::<Secret>(json))),
                "ControllerRevision" => Some(held(|| parsed::<ControllerRevision>(json))),
                "McpApp" => Some(held(|| parsed::<McpApp>(json))),
                "Pod" => {
                    let lean = held(|| {
                        let mut pod = parsed::<Pod>(json);
                        mcp_operator::gate::lean_pod(&mut pod);
                        pod
                    });
                    forms.push(("typed, as the gate keeps it", lean));
                    Some(held(|| parsed::<Pod>(json)))
                }
                _ => None,
            };
            if let Some(typed) = typed {
                forms.push(("typed", typed));
            }
            row(&kind, json, &forms);
        }
    }
}
