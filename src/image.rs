//! The container image of orgmesh's own simulator, built locally: there is no registry to pull
//! from, so the image is `FROM scratch` plus this very binary and the shared libraries it
//! loads (found with `ldd`). It is what container isolation (`orgmesh run --isolation
//! containers`: one container per scenario cluster) runs; `orgmesh image build` builds it, and
//! a run builds it on first use. The tag holds a digest of the binary, so a rebuilt orgmesh
//! never runs an older one's image.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{self, Command, Environment, ProcessError};

/// The image's repository; the tag is the crate version.
pub const IMAGE_REPOSITORY: &str = "orgmesh-sim";
/// The label that marks the image as orgmesh's.
pub const IMAGE_LABEL: &str = "dev.orgmesh.image";

/// How long `ldd` and `docker build` may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Why the image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot find orgmesh's own executable: {0}")]
    CurrentExe(#[source] std::io::Error),
    #[error("cannot list the shared libraries of {binary}")]
    Libraries {
        binary: PathBuf,
        #[source]
        source: ProcessError,
    },
    #[error("cannot prepare the build context in {directory}")]
    Context {
        directory: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("docker could not build the image")]
    Build {
        #[source]
        source: ProcessError,
    },
}

/// The image reference of a binary with these contents: `orgmesh-sim:<version>-<digest>`.
pub fn reference_for(binary: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(binary);
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{IMAGE_REPOSITORY}:{}-{short}", env!("CARGO_PKG_VERSION"))
}

/// The image reference of the running binary (read and hashed once per process).
pub fn image_reference() -> Result<String, std::io::Error> {
    static REFERENCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(reference) = REFERENCE.get() {
        return Ok(reference.clone());
    }
    let binary = std::env::current_exe()?;
    let reference = reference_for(&std::fs::read(binary)?);
    Ok(REFERENCE.get_or_init(|| reference).clone())
}

/// The absolute paths `ldd` prints: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`; the kernel's vDSO has no file and is skipped.
pub fn parse_ldd(output: &str) -> Vec<PathBuf> {
    output
        .lines()
        .filter_map(|line| {
            let candidate = match line.split_once("=>") {
                Some((_, target)) => target.trim(),
                None => line.trim(),
            };
            let path = candidate.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The Dockerfile: nothing but the files of the build context's `rootfs/`.
pub fn dockerfile() -> String {
    format!("FROM scratch\nCOPY rootfs/ /\nLABEL {IMAGE_LABEL}=sim\nENTRYPOINT [\"/orgmesh\"]\n")
}

/// `docker build` of `context` as `reference`.
pub fn build_command(context: &Path, reference: &str) -> Command {
    Command::new("docker")
        .args(["build", "--quiet", "--tag", reference, "--label"])
        .arg(format!("{IMAGE_LABEL}=sim"))
        .arg(context.display().to_string())
}

fn copy_into(root: &Path, source: &Path, target: &Path) -> Result<(), std::io::Error> {
    let destination = root.join(target.strip_prefix("/").unwrap_or(target));
    if let Some(parent) = destination.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(source, destination).map(|_| ())
}

/// Builds the image from the running binary; returns its reference.
pub async fn build(environment: &Environment) -> Result<String, ImageError> {
    let binary = std::env::current_exe().map_err(ImageError::CurrentExe)?;
    let reference = image_reference().map_err(ImageError::CurrentExe)?;
    let ldd = Command::new("ldd").arg(binary.display().to_string());
    let libraries = process::run(&environment.apply(ldd), BUILD_TIMEOUT)
        .await
        .map(|output| parse_ldd(&output.stdout))
        .map_err(|source| ImageError::Libraries {
            binary: binary.clone(),
            source,
        })?;
    let context = std::env::temp_dir().join(format!("orgmesh-image-{}", std::process::id()));
    let context_error = |source| ImageError::Context {
        directory: context.clone(),
        source,
    };
    let rootfs = context.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(context_error)?;
    copy_into(&rootfs, &binary, Path::new("/orgmesh")).map_err(context_error)?;
    for library in &libraries {
        copy_into(&rootfs, library, library).map_err(context_error)?;
    }
    std::fs::write(context.join("Dockerfile"), dockerfile()).map_err(context_error)?;
    let command = build_command(&context, &reference);
    let result = process::run(&environment.apply(command), BUILD_TIMEOUT).await;
    let _ = std::fs::remove_dir_all(&context);
    result.map_err(|source| ImageError::Build { source })?;
    Ok(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_the_library_files() {
        let output = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1b)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1a)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f1c)\n";
        assert_eq!(
            parse_ldd(output),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tstatically linked\n").is_empty());
    }

    #[test]
    fn the_tag_follows_the_binary() {
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            reference_for(b"binary"),
            format!("orgmesh-sim:{version}-9a3a45d01531")
        );
        assert_ne!(reference_for(b"binary"), reference_for(b"binary2"));
    }

    #[test]
    fn the_image_is_scratch_plus_the_context() {
        let dockerfile = dockerfile();
        assert!(dockerfile.starts_with("FROM scratch\n"));
        assert!(dockerfile.contains("ENTRYPOINT [\"/orgmesh\"]"));
        let reference = reference_for(b"binary");
        let argv = build_command(Path::new("/tmp/context"), &reference).argv();
        assert_eq!(argv[..2], ["docker", "build"]);
        assert!(argv.contains(&reference));
        assert_eq!(argv.last().map(String::as_str), Some("/tmp/context"));
    }
}
