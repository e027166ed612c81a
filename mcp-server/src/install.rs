//! `mcp-server install DEST`: copies this binary to DEST. The companion image has no shell, so an
//! init container uses this to place the bridge into a volume the app's own container shares.

use std::path::Path;

use anyhow::Context as _;

/// Copies the running executable to `dest` (executable by everyone), replacing any file there
/// in one step so a reader never sees half a binary.
pub fn install(dest: &Path) -> anyhow::Result<()> {
    let source = std::env::current_exe().context("cannot locate the running executable")?;
    let name = dest
        .file_name()
        .context("the destination needs a file name")?;
    let staging = dest.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    std::fs::copy(&source, &staging)
        .with_context(|| format!("cannot copy {} to {}", source.display(), staging.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", staging.display()))?;
    }
    std::fs::rename(&staging, dest)
        .with_context(|| format!("cannot move the copy into place at {}", dest.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_binary_is_copied_and_executable() {
        let dir = std::env::temp_dir().join(format!("mcp-server-install-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("mcp-server");
        install(&dest).unwrap();
        let copied = std::fs::metadata(&dest).unwrap();
        let original = std::fs::metadata(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(copied.len(), original.len());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(copied.permissions().mode() & 0o777, 0o755);
        }
        assert!(!dir.join(".mcp-server.partial").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
