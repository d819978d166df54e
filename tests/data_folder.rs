//! ImageFolder trees and list files on the scikit-image photos; SPEC parsing.

mod common;

use common::{names, sample};
use sslbench::data;

fn err(result: anyhow::Result<data::Dataset>) -> String {
    format!("{:#}", result.unwrap_err())
}

#[test]
fn imagefolder_classes_sorted_images_sorted() {
    let root = sample("skimage-folder");
    let ds = data::open(&format!("imagefolder:{}", root.display()), None).unwrap();
    assert_eq!(ds.classes, ["biomedical", "photo", "texture"]);
    let ids: Vec<_> = ds.samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "biomedical/cell.png",
            "biomedical/ihc.png",
            "biomedical/microaneurysms.png",
            "biomedical/retina.jpg",
            "photo/astronaut.png",
            "photo/camera.png",
            "photo/chelsea.png",
            "photo/coffee.png",
            "photo/motorcycle_left.png",
            "photo/rocket.jpg",
            "texture/brick.png",
            "texture/grass.png",
            "texture/gravel.png",
        ]
    );
    let targets: Vec<_> = ds.samples.iter().map(|s| s.target[0]).collect();
    assert_eq!(targets, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2]);
    assert!(ds.samples.iter().all(|s| s.path == root.join(&s.id)));
    assert_eq!(ds.manifest_digest().unwrap(), ds.manifest_digest().unwrap());
}

#[test]
fn imagefolder_class_override_picks_folders_in_order() {
    let root = sample("skimage-folder");
    let ds = data::open(
        &format!("imagefolder:{}", root.display()),
        Some(names(&["texture", "photo"])),
    )
    .unwrap();
    assert_eq!(ds.samples.len(), 9);
    assert_eq!(
        (ds.samples[0].id.as_str(), ds.samples[0].target[0]),
        ("texture/brick.png", 0)
    );
    assert_eq!(ds.samples[8].target, [1]);

    let msg = err(data::open(
        &format!("imagefolder:{}", root.display()),
        Some(names(&["animals"])),
    ));
    assert!(msg.contains("skimage-folder/animals"), "{msg}");
}

#[test]
fn imagefolder_extensions_case_insensitive_and_nested_in_torchvision_order() {
    let dir = tempfile::tempdir().unwrap();
    let photo = std::fs::read(sample("skimage/astronaut.png")).unwrap();
    for file in [
        "a/Z.JPG",
        "a/sub/x.Png",
        "a/b.jpeg",
        "a/notes.txt",
        "a/c.gif",
        "b/one.BMP",
    ] {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &photo).unwrap();
    }
    let ds = data::open(&format!("imagefolder:{}", dir.path().display()), None).unwrap();
    let ids: Vec<_> = ds.samples.iter().map(|s| s.id.as_str()).collect();
    // os.walk order: files of a/ first, then those of a/sub/.
    assert_eq!(ids, ["a/Z.JPG", "a/b.jpeg", "a/sub/x.Png", "b/one.BMP"]);

    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let msg = err(data::open(
        &format!("imagefolder:{}", dir.path().display()),
        None,
    ));
    assert!(
        msg.contains("empty") && msg.contains("holds no image"),
        "{msg}"
    );
}

#[test]
fn list_file_relative_paths_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("val.txt");
    std::fs::write(&list, "astronaut.png 3\n\nchelsea.png 1\n").unwrap();
    let root = sample("skimage");
    let spec = format!("list:{}:{}", list.display(), root.display());
    let ds = data::open(&spec, None).unwrap();
    assert_eq!(ds.spec, spec);
    assert_eq!(ds.classes, ["0", "1", "2", "3"]);
    let rows: Vec<_> = ds
        .samples
        .iter()
        .map(|s| (s.id.as_str(), s.target.clone()))
        .collect();
    assert_eq!(rows, [("astronaut.png", vec![3]), ("chelsea.png", vec![1])]);
    assert_eq!(ds.samples[1].path, root.join("chelsea.png"));
    ds.manifest_digest().unwrap();

    let msg = err(data::open(&spec, Some(names(&["a", "b"]))));
    assert!(msg.contains("labels up to 3"), "{msg}");

    std::fs::write(&list, "astronaut.png 3\nchelsea.png cat\n").unwrap();
    let msg = err(data::open(&spec, None));
    assert!(msg.contains("val.txt:2"), "{msg}");
}

#[test]
fn spec_errors_say_which_forms_exist() {
    for (spec, expected) in [
        ("nowhere", "has no kind"),
        ("lmdb:/data", "unknown dataset kind 'lmdb'"),
        ("voc:/data/VOC2007", "must be voc:ROOT:SPLIT"),
        ("coco:/a.json:", "must be coco:ANNOTATIONS.json:IMAGES_DIR"),
    ] {
        let msg = err(data::open(spec, None));
        assert!(msg.contains(expected), "{spec}: {msg}");
    }
    let msg = err(data::open("imagefolder:/no/such/dir", None));
    assert!(msg.contains("/no/such/dir"), "{msg}");
}
