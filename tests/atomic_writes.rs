//! Atomic writes (infer --output, checkpoints, Lstm::save) keep what a path is: a symbolic
//! link stays a link to its updated target, a file keeps its permissions, a device or a
//! directory is refused, and concurrent writers to one path all succeed.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use wgpu_lstm::io::write_atomically;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgpu-lstm-atomic-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_symlink_stays_a_link_to_the_updated_target() {
    let d = dir("link");
    let target = d.join("real.safetensors");
    std::fs::write(&target, b"old").unwrap();
    let link = d.join("link.safetensors");
    std::os::unix::fs::symlink("real.safetensors", &link).unwrap();
    write_atomically(&link, b"new").unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    // A link to a file not yet made: it is made where the link points.
    let dangling = d.join("dangling");
    std::os::unix::fs::symlink("later.txt", &dangling).unwrap();
    write_atomically(&dangling, b"made").unwrap();
    assert_eq!(std::fs::read(d.join("later.txt")).unwrap(), b"made");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn permissions_are_kept() {
    let d = dir("mode");
    let path = d.join("secret.safetensors");
    std::fs::write(&path, b"old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    write_atomically(&path, b"new").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn devices_and_directories_are_refused() {
    let e = write_atomically(std::path::Path::new("/dev/null"), b"x").unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(!null.is_file(), "/dev/null was replaced");
    let d = dir("directory");
    let e = write_atomically(&d, b"x").unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    assert!(d.is_dir());
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn concurrent_writers_to_one_path_all_succeed() {
    let d = dir("threads");
    let path = d.join("shared.bin");
    let threads: Vec<_> = (0..8u8)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                for _ in 0..20 {
                    write_atomically(&path, &[i; 1000]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 1000);
    assert!(bytes.iter().all(|&b| b == bytes[0]), "a torn file");
    assert_eq!(
        std::fs::read_dir(&d).unwrap().count(),
        1,
        "temporary files left"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
