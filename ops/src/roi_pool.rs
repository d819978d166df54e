//! RoIPool with Detectron's RoIPoolF arithmetic, forward and backward.
