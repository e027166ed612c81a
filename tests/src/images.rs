//! The image map: which local command stands for a container image.
//!
//! An image's command plays the part of its ENTRYPOINT (with an empty CMD): a container's `args`
//! are appended to it, and a container's `command` replaces it, as Kubernetes specifies. An image
//! may also list files it contains (`/mcp-server` in the companion image): the kubelet bind-mounts
//! them at those paths in the image's containers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::Error;

#[derive(Debug, Clone, Default)]
pub struct ImageMap {
    entrypoints: BTreeMap<String, Vec<String>>,
    files: BTreeMap<String, Vec<(PathBuf, PathBuf)>>,
}

impl ImageMap {
    /// Declares that `image` contains `host_file` at `path_in_image`.
    pub fn insert_file(
        &mut self,
        image: impl Into<String>,
        path_in_image: impl Into<PathBuf>,
        host_file: impl Into<PathBuf>,
    ) {
        self.files
            .entry(image.into())
            .or_default()
            .push((path_in_image.into(), host_file.into()));
    }

    /// The files `image` contains: (path in the image, file on this machine).
    pub fn files(&self, image: &str) -> &[(PathBuf, PathBuf)] {
        self.files
            .get(image)
            .or_else(|| self.files.get(repository(image)))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Parses `IMAGE=PATH_IN_IMAGE=HOST_FILE` (the companion image's binary, for example).
    pub fn insert_file_spec(&mut self, spec: &str) -> Result<(), Error> {
        let mut parts = spec.splitn(3, '=');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(image), Some(path), Some(host))
                if !image.is_empty() && path.starts_with('/') && !host.is_empty() =>
            {
                self.insert_file(
                    image,
                    path,
                    std::path::absolute(host).map_err(|e| Error::io(host, e))?,
                );
                Ok(())
            }
            _ => Err(Error::ImageFile(spec.to_string())),
        }
    }

    pub fn insert(&mut self, image: impl Into<String>, entrypoint: Vec<String>) {
        self.entrypoints.insert(image.into(), entrypoint);
    }

    /// Parses `IMAGE=COMMAND`, the command split on white space.
    pub fn insert_spec(&mut self, spec: &str) -> Result<(), Error> {
        let (image, command) = spec
            .split_once('=')
            .filter(|(image, command)| !image.is_empty() && !command.trim().is_empty())
            .ok_or_else(|| Error::ImageMap(spec.to_string()))?;
        self.insert(
            image,
            command.split_whitespace().map(String::from).collect(),
        );
        Ok(())
    }

    /// The entrypoint of `image`: an exact match first, then the image without tag or digest
    /// (`python:3.12` finds an entry for `python`).
    pub fn entrypoint(&self, image: &str) -> Option<&[String]> {
        self.entrypoints
            .get(image)
            .or_else(|| self.entrypoints.get(repository(image)))
            .map(Vec::as_slice)
    }
}

/// `registry/name:tag@digest` → `registry/name` (a port in the registry is not a tag).
fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_and_digest_fall_back_to_the_repository() {
        let mut map = ImageMap::default();
        map.insert_spec("python=python3 -m http.server").unwrap();
        map.insert_spec("localhost:5000/app=/bin/app").unwrap();
        assert_eq!(
            map.entrypoint("python:3.12").unwrap(),
            ["python3", "-m", "http.server"]
        );
        assert_eq!(map.entrypoint("python@sha256:abc").unwrap()[0], "python3");
        assert_eq!(
            map.entrypoint("localhost:5000/app:v1").unwrap(),
            ["/bin/app"]
        );
        assert!(map.entrypoint("localhost:5000/other").is_none());
    }

    #[test]
    fn malformed_entries_are_rejected() {
        let mut map = ImageMap::default();
        assert!(map.insert_spec("no-command").is_err());
        assert!(map.insert_spec("=cmd").is_err());
        assert!(map.insert_spec("img=  ").is_err());
        assert!(map.insert_file_spec("img=relative/path=/bin/true").is_err());
        assert!(map.insert_file_spec("img=/usr/bin/x").is_err());
    }

    #[test]
    fn image_files_are_declared_by_image_path_and_host_file() {
        let mut map = ImageMap::default();
        map.insert_file_spec("ghcr.io/o/server=/usr/local/bin/server=/bin/true")
            .unwrap();
        assert_eq!(
            map.files("ghcr.io/o/server:v1"),
            [(
                PathBuf::from("/usr/local/bin/server"),
                PathBuf::from("/bin/true")
            )]
        );
    }
}
