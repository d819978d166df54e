//! VOC reader on the real labelme PASCAL VOC photos (ImageSets/Main derived by the fetch script).

mod common;

use std::path::Path;

use common::{names, sample, voc_copy};
use sslbench::data::{self, voc};

const IDS: [&str; 3] = ["2011_000003", "2011_000006", "2011_000025"];

fn spec(root: &Path, split: &str) -> String {
    format!("voc:{}:{split}", root.display())
}

fn open(root: &Path) -> anyhow::Result<data::Dataset> {
    data::open(
        &spec(root, "trainval"),
        Some(names(&["bus", "car", "person"])),
    )
}

fn err(result: anyhow::Result<impl std::fmt::Debug>) -> String {
    format!("{:#}", result.unwrap_err())
}

#[test]
fn reads_targets_boxes_and_paths() {
    let root = sample("labelme-voc");
    let ds = open(&root).unwrap();
    assert_eq!(ds.classes, ["bus", "car", "person"]);
    let ids: Vec<_> = ds.samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, IDS);
    let targets: Vec<_> = ds.samples.iter().map(|s| s.target.clone()).collect();
    assert_eq!(targets, [vec![-1, -1, 1], vec![-1, -1, 1], vec![1, 1, -1]]);
    assert!(ds
        .samples
        .iter()
        .all(|s| s.path == root.join("JPEGImages").join(format!("{}.jpg", s.id))));

    let objects = ds.objects.as_ref().unwrap();
    assert_eq!(objects.iter().map(Vec::len).collect::<Vec<_>>(), [2, 4, 3]);
    let first = &objects[0][0];
    assert_eq!(first.name, "person");
    let expected = [191.0, 107.369, 313.0, 329.369];
    assert!(first
        .bbox
        .iter()
        .zip(expected)
        .all(|(a, b)| (a - b).abs() < 1e-3));
    let names: Vec<_> = objects[2].iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["bus", "bus", "car"]);
    assert_eq!(objects[2][1].bbox, [1.0, 99.0, 107.0, 282.0]);
    // labelme writes empty <difficult/> and <truncated/>: not difficult, not truncated.
    assert!(objects
        .iter()
        .flatten()
        .all(|o| !o.difficult && !o.truncated));

    let a = voc::read_annotation(&root.join("Annotations/2011_000003.xml")).unwrap();
    assert_eq!((a.width, a.height), (500, 338));
}

#[test]
fn default_classes_are_the_twenty_voc_classes_and_each_file_is_required() {
    let root = sample("labelme-voc");
    let ds = data::open(&spec(&root, "trainval"), None).unwrap();
    assert_eq!(ds.classes.len(), 20);
    let person = ds.classes.iter().position(|c| c == "person").unwrap();
    let aeroplane = ds.classes.iter().position(|c| c == "aeroplane").unwrap();
    assert!(ds.samples.iter().all(|s| s.target[aeroplane] == -1));
    assert_eq!(
        ds.samples.iter().filter(|s| s.target[person] == 1).count(),
        2
    );

    let dir = voc_copy();
    std::fs::remove_file(dir.path().join("ImageSets/Main/aeroplane_trainval.txt")).unwrap();
    let msg = err(data::open(&spec(dir.path(), "trainval"), None));
    assert!(
        msg.contains("ImageSets/Main/aeroplane_trainval.txt"),
        "{msg}"
    );
}

/// Derives `ImageSets/Main` for bus, car and person from the XML of the copy at `root`.
fn write_bus_car_person_sets(root: &Path) {
    voc::write_image_sets(
        root,
        "trainval",
        &names(&IDS),
        &names(&["bus", "car", "person"]),
    )
    .unwrap();
}

#[test]
fn write_image_sets_matches_the_fetch_script() {
    let root = sample("labelme-voc");
    let dir = voc_copy();
    std::fs::remove_dir_all(dir.path().join("ImageSets")).unwrap();
    write_bus_car_person_sets(dir.path());
    for file in [
        "trainval.txt",
        "bus_trainval.txt",
        "car_trainval.txt",
        "person_trainval.txt",
    ] {
        let read = |r: &Path| std::fs::read_to_string(r.join("ImageSets/Main").join(file)).unwrap();
        assert_eq!(read(dir.path()), read(&root), "{file}");
    }
}

#[test]
fn difficult_only_objects_give_label_zero() {
    let dir = voc_copy();
    let xml = dir.path().join("Annotations/2011_000025.xml");
    let text = std::fs::read_to_string(&xml).unwrap();
    // Mark the one car difficult (the third object), and truncated.
    let car = text.find("<name>car</name>").unwrap();
    let (head, tail) = text.split_at(car);
    let tail = tail
        .replacen("<truncated/>", "<truncated>1</truncated>", 1)
        .replacen("<difficult/>", "<difficult>1</difficult>", 1);
    std::fs::write(&xml, format!("{head}{tail}")).unwrap();
    write_bus_car_person_sets(dir.path());

    let ds = open(dir.path()).unwrap();
    assert_eq!(ds.samples[2].target, [1, 0, -1]);
    let car = &ds.objects.unwrap()[2][2];
    assert!(car.difficult && car.truncated);
}

#[test]
fn manifest_digest_is_stable_and_sensitive_to_file_size() {
    let base = open(&sample("labelme-voc"))
        .unwrap()
        .manifest_digest()
        .unwrap();
    assert_eq!(base.len(), 64);
    let dir = voc_copy();
    let copy = open(dir.path()).unwrap();
    assert_eq!(
        copy.manifest_digest().unwrap(),
        base,
        "the digest must not depend on the location"
    );

    let mut fewer = copy.clone();
    fewer.classes.pop();
    assert_ne!(fewer.manifest_digest().unwrap(), base);

    let jpeg = dir.path().join("JPEGImages/2011_000006.jpg");
    let mut bytes = std::fs::read(&jpeg).unwrap();
    bytes.push(0);
    std::fs::write(&jpeg, bytes).unwrap();
    assert_ne!(copy.manifest_digest().unwrap(), base);

    std::fs::remove_file(&jpeg).unwrap();
    let msg = err(copy.manifest_digest());
    assert!(msg.contains(&jpeg.display().to_string()), "{msg}");
}

#[test]
fn missing_annotation_names_the_xml() {
    let dir = voc_copy();
    let xml = dir.path().join("Annotations/2011_000006.xml");
    std::fs::remove_file(&xml).unwrap();
    let msg = err(open(dir.path()));
    assert!(msg.contains(&xml.display().to_string()), "{msg}");
}

#[test]
fn missing_split_file_names_it() {
    let dir = voc_copy();
    let msg = err(data::open(&spec(dir.path(), "test"), Some(names(&["bus"]))));
    assert!(msg.contains("ImageSets/Main/test.txt"), "{msg}");
}

#[test]
fn id_missing_from_a_class_file_names_both_files() {
    let dir = voc_copy();
    let car = dir.path().join("ImageSets/Main/car_trainval.txt");
    let text = std::fs::read_to_string(&car).unwrap();
    std::fs::write(&car, text.replace("2011_000006 -1\n", "")).unwrap();
    let msg = err(open(dir.path()));
    assert!(
        msg.contains("2011_000006") && msg.contains("car_trainval.txt"),
        "{msg}"
    );
    assert!(msg.contains("trainval.txt"), "{msg}");
}

#[test]
fn bad_label_value_names_file_and_line() {
    let dir = voc_copy();
    let bus = dir.path().join("ImageSets/Main/bus_trainval.txt");
    std::fs::write(&bus, "2011_000003 -1\n2011_000006 2\n2011_000025 1\n").unwrap();
    let msg = err(open(dir.path()));
    assert!(msg.contains("bus_trainval.txt:2"), "{msg}");
}
