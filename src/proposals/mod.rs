//! Region proposals: selective search and the proposal files of Detectron and py-faster-rcnn.

pub mod file;
