//! Images as linked figures: each `<img>` points at the file where it lies, by a path
//! relative to the page, and opens full size on click; nothing is embedded.

use super::escape::{esc, relative, url};
use std::fmt::Write;
use std::path::Path;

/// A gallery of `images`, each captioned with its path below `base` (the run's folder).
pub fn gallery(images: &[impl AsRef<Path>], page_dir: &Path, base: &Path) -> String {
    if images.is_empty() {
        return String::new();
    }
    let mut html = String::from("<div class=\"gallery\">\n");
    for image in images {
        let image = image.as_ref();
        let link = url(&relative(page_dir, image));
        let caption = image
            .strip_prefix(base)
            .unwrap_or(image)
            .display()
            .to_string();
        let _ = writeln!(
            html,
            "<figure><a href=\"{link}\"><img src=\"{link}\" alt=\"{cap}\"></a>\
             <figcaption>{cap}</figcaption></figure>",
            cap = esc(&caption)
        );
    }
    html + "</div>\n"
}
