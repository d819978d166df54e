//! RoIAlign (Caffe2 / torchvision, `aligned` false and true), forward and backward.
