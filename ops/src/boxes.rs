//! Boxes in Detectron's pixel convention (inclusive corners, widths `x2 - x1 + 1`): IoU, NMS,
//! the box coding of Fast R-CNN, clipping.
