//! Proposal files: Detectron's selective-search pickles and py-faster-rcnn's `.mat` files.
