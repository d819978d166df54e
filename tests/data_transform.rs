//! Decoding and transforms on the scikit-image photos: torchvision parity, channel order,
//! squash vs centre crop, TOML form, and the errors for missing, corrupt and small images.

mod common;

use std::path::Path;

use common::{imagenet_center, sample};
use image::{Rgb, RgbImage};
use sslbench::data::{
    decode, decode_batch, ChannelOrder, Crop, ImageError, Resize, TransformConfig, TransformError,
};

/// A transform that keeps raw pixel values, to check geometry exactly.
fn raw(resize: Resize, crop: Crop, size: u32) -> TransformConfig {
    TransformConfig {
        resize,
        crop,
        size,
        mean: [0.0; 3],
        std: [1.0; 3],
        pixel_scale: 1.0,
        channel_order: ChannelOrder::Rgb,
    }
}

/// The parity fixture holds torchvision's Resize(256) + CenterCrop(224) + ToTensor + Normalize
/// (PIL bilinear) of skimage's astronaut and chelsea: image's Triangle filter is the same
/// antialiased bilinear, up to PIL's fixed-point arithmetic and 8-bit intermediate rounding.
#[test]
fn matches_torchvision_center_crop() {
    let npz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/parity/resnet50_w16th_outputs.npz");
    let input = candle_core::Tensor::read_npz(&npz)
        .unwrap()
        .into_iter()
        .find(|(name, _)| name == "input")
        .expect("the fixture has no `input` array")
        .1;
    assert_eq!(input.dims(), [2, 3, 224, 224]);
    let tf = imagenet_center();
    for (i, photo) in ["astronaut.png", "chelsea.png"].into_iter().enumerate() {
        let ours = tf
            .apply(&decode(&sample("skimage").join(photo)).unwrap())
            .unwrap();
        let theirs = input
            .get(i)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(ours.len(), theirs.len());
        let diffs: Vec<f32> = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .collect();
        let max = diffs.iter().cloned().fold(0.0, f32::max);
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        eprintln!("{photo}: max abs diff {max:.5}, mean abs diff {mean:.6} (normalised units)");
        assert!(mean < 0.02 && max < 0.1, "{photo}: max {max}, mean {mean}");
    }
}

#[test]
fn output_is_chw_of_size_squared() {
    let chelsea = decode(&sample("skimage/chelsea.png")).unwrap();
    assert_eq!(chelsea.dimensions(), (451, 300));
    for crop in [Crop::Squash, Crop::Center] {
        for (resize, size) in [
            (Resize::Shorter(256), 224),
            (Resize::None, 227),
            (Resize::Shorter(227), 227),
        ] {
            let tf = TransformConfig {
                resize,
                crop,
                size,
                ..imagenet_center()
            };
            assert_eq!(
                tf.apply(&chelsea).unwrap().len(),
                3 * (size * size) as usize,
                "{tf:?}"
            );
        }
    }
}

#[test]
fn bgr_swaps_channels_with_their_mean_and_std() {
    let img = decode(&sample("skimage/coffee.png")).unwrap();
    let rgb = imagenet_center();
    let bgr = TransformConfig {
        channel_order: ChannelOrder::Bgr,
        ..rgb.clone()
    };
    let (a, b) = (rgb.apply(&img).unwrap(), bgr.apply(&img).unwrap());
    let plane = 224 * 224;
    assert_eq!(a[..plane], b[2 * plane..]);
    assert_eq!(a[plane..2 * plane], b[plane..2 * plane]);
    assert_eq!(a[2 * plane..], b[..plane]);

    // Caffe2 style: 0..255 values minus the mean, no scaling.
    let caffe = TransformConfig {
        mean: [122.77, 115.95, 102.98],
        std: [1.0; 3],
        pixel_scale: 1.0,
        ..bgr
    };
    let out = caffe.apply(&img).unwrap();
    let raw_center = raw(Resize::Shorter(256), Crop::Center, 224)
        .apply(&img)
        .unwrap();
    assert!((out[0] - (raw_center[2 * plane] - 102.98)).abs() < 1e-4);
}

#[test]
fn center_crop_uses_torchvision_offsets() {
    // 7 x 4 image whose red channel is the column index and green the row index.
    let img = RgbImage::from_fn(7, 4, |x, y| Rgb([x as u8, y as u8, 0]));
    let out = raw(Resize::None, Crop::Center, 2).apply(&img).unwrap();
    // left = round(5 / 2) = 2 (ties to even), top = round(2 / 2) = 1.
    assert_eq!(out[..4], [2.0, 3.0, 2.0, 3.0]);
    assert_eq!(out[4..8], [1.0, 1.0, 2.0, 2.0]);
    let img = RgbImage::from_fn(6, 5, |x, y| Rgb([x as u8, y as u8, 0]));
    let out = raw(Resize::None, Crop::Center, 2).apply(&img).unwrap();
    // left = round(4 / 2) = 2, top = round(3 / 2) = 2 (1.5 ties to even).
    assert_eq!((out[0], out[4]), (2.0, 2.0));
}

#[test]
fn squash_keeps_the_whole_image_and_center_cuts_it() {
    // Left half black, right half white, 400 x 200: a squash keeps both halves at full width,
    // a centre crop of the 256-resized image (512 x 256) shows only the middle.
    let img = RgbImage::from_fn(
        400,
        200,
        |x, _| if x < 200 { Rgb([0; 3]) } else { Rgb([255; 3]) },
    );
    let squash = raw(Resize::Shorter(256), Crop::Squash, 224)
        .apply(&img)
        .unwrap();
    let center = raw(Resize::Shorter(256), Crop::Center, 224)
        .apply(&img)
        .unwrap();
    assert_eq!((squash[0], squash[223]), (0.0, 255.0));
    assert_eq!((squash[100], squash[124]), (0.0, 255.0));
    assert_eq!((center[0], center[223]), (0.0, 255.0));
    assert_eq!((center[60], center[164]), (0.0, 255.0));
    assert_ne!(squash, center);
    // A uniform image stays uniform through either path.
    let grey = RgbImage::from_pixel(333, 500, Rgb([128, 64, 32]));
    let out = imagenet_center().apply(&grey).unwrap();
    let expected = (128.0 / 255.0 - 0.485) / 0.229;
    assert!(out[..224 * 224].iter().all(|v| (v - expected).abs() < 1e-5));
}

#[test]
fn too_small_for_the_crop_is_an_error() {
    let tiny = decode(&sample("skimage/microaneurysms.png")).unwrap(); // 102 x 102
    let tf = raw(Resize::None, Crop::Center, 224);
    let e = tf.apply(&tiny).unwrap_err();
    assert!(
        matches!(
            e,
            TransformError::TooSmall {
                width: 102,
                height: 102,
                size: 224
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("squash"), "{e}");
    // The squash path upsamples instead.
    assert_eq!(
        raw(Resize::None, Crop::Squash, 224)
            .apply(&tiny)
            .unwrap()
            .len(),
        3 * 224 * 224
    );
    // A resize below the crop size is a config error, whatever the image.
    let e = raw(Resize::Shorter(200), Crop::Center, 224)
        .apply(&tiny)
        .unwrap_err();
    assert!(matches!(e, TransformError::Config(_)), "{e}");
    let e = TransformConfig {
        std: [0.0, 1.0, 1.0],
        ..imagenet_center()
    }
    .apply(&tiny)
    .unwrap_err();
    assert!(matches!(e, TransformError::Config(_)), "{e}");
}

#[test]
fn toml_form() {
    let text = r#"
        resize = 256
        crop = "squash"
        size = 224
        mean = [0.485, 0.456, 0.406]
        std = [0.229, 0.224, 0.225]
        pixel_scale = 0.00392156862745098
        channel_order = "rgb"
    "#;
    let tf: TransformConfig = toml::from_str(text).unwrap();
    assert_eq!(
        tf,
        TransformConfig {
            crop: Crop::Squash,
            pixel_scale: 1.0 / 255.0,
            ..imagenet_center()
        }
    );
    assert_eq!(
        toml::from_str::<TransformConfig>(&toml::to_string(&tf).unwrap()).unwrap(),
        tf
    );

    let none: TransformConfig = toml::from_str(
        &text
            .replace("256", "\"none\"")
            .replace("\"rgb\"", "\"bgr\""),
    )
    .unwrap();
    assert_eq!(
        (none.resize, none.channel_order),
        (Resize::None, ChannelOrder::Bgr)
    );
    assert!(toml::to_string(&none)
        .unwrap()
        .contains("resize = \"none\""));

    for (from, to) in [
        ("256", "\"big\""),
        ("256", "0"),
        ("\"squash\"", "\"crop\""),
        ("size = 224", "side = 224"),
    ] {
        let e = toml::from_str::<TransformConfig>(&text.replace(from, to)).unwrap_err();
        eprintln!("{to}: {e}");
    }
}

#[test]
fn decode_converts_grey_rgba_and_16_bit_to_rgb8() {
    let dir = sample("skimage");
    let camera = decode(&dir.join("camera.png")).unwrap(); // 8-bit grey
    assert!(camera
        .pixels()
        .all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
    // RGBA: alpha dropped; values as PIL's convert("RGB") gives them.
    let logo = decode(&dir.join("logo.png")).unwrap();
    assert_eq!(logo.dimensions(), (500, 500));
    assert_eq!(logo.get_pixel(250, 250).0, [255, 159, 83]);
    // 16-bit RGB: PIL reads the levels {0, 44, 50, 80, 175, 205, 211, 255} (high byte); the
    // rounding to 8 bits may differ by one.
    let chess = decode(&dir.join("chessboard_RGB.png")).unwrap();
    assert_eq!(chess.dimensions(), (200, 200));
    let pil = [0u8, 44, 50, 80, 175, 205, 211, 255];
    assert!(chess
        .pixels()
        .flat_map(|p| p.0)
        .all(|c| pil.iter().any(|l| l.abs_diff(c) <= 1)));
    let rocket = decode(&dir.join("rocket.jpg")).unwrap();
    assert_eq!(rocket.dimensions(), (640, 427));
}

/// Truncated copies of a real JPEG and PNG, and a text file named .jpg.
fn broken_images(dir: &Path) -> Vec<std::path::PathBuf> {
    ["rocket.jpg", "coffee.png"]
        .iter()
        .map(|name| {
            let bytes = std::fs::read(sample("skimage").join(name)).unwrap();
            let path = dir.join(format!("truncated_{name}"));
            std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
            path
        })
        .chain(std::iter::once({
            let path = dir.join("notes.jpg");
            std::fs::write(&path, "not an image").unwrap();
            path
        }))
        .collect()
}

#[test]
fn corrupt_images_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for path in broken_images(dir.path()) {
        let e = decode(&path).unwrap_err();
        assert!(matches!(e, ImageError::Corrupt { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("skip_bad_images"),
            "{msg}"
        );
        eprintln!("{msg}");
    }
    let missing = dir.path().join("gone.jpg");
    let e = decode(&missing).unwrap_err();
    assert!(
        matches!(e, ImageError::Missing { .. }) && e.to_string().contains("gone.jpg"),
        "{e}"
    );
}

#[test]
fn decode_batch_keeps_order_and_reports_each_failure() {
    let dir = tempfile::tempdir().unwrap();
    let broken = broken_images(dir.path());
    let good = sample("skimage/astronaut.png");
    let tiny = sample("skimage/microaneurysms.png");
    let missing = dir.path().join("gone.png");
    let paths = [
        good.as_path(),
        broken[0].as_path(),
        missing.as_path(),
        tiny.as_path(),
        good.as_path(),
    ];
    let tf = TransformConfig {
        resize: Resize::None,
        ..imagenet_center()
    };
    let out = decode_batch(&paths, &tf);
    assert_eq!(out.len(), 5);
    assert_eq!(out[0].as_ref().unwrap(), out[4].as_ref().unwrap());
    assert_eq!(
        out[0].as_ref().unwrap(),
        &tf.apply(&decode(&good).unwrap()).unwrap()
    );
    assert!(matches!(&out[1], Err(ImageError::Corrupt { path, .. }) if *path == broken[0]));
    assert!(matches!(&out[2], Err(ImageError::Missing { path }) if *path == missing));
    let Err(e @ ImageError::Transform { .. }) = &out[3] else {
        panic!("{:?}", out[3])
    };
    assert!(e.to_string().contains("microaneurysms.png"), "{e}");
}
