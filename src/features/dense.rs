//! Dense cache entries: one feature map per image (of its own size), for the detection and
//! normals tasks' frozen trunks.
