//! Python pickles of numpy arrays (Detectron's proposal files, Caffe2 blob dictionaries):
//! a reader for protocols 0-4 as Python 2 and Python 3 write them, and a protocol-2 writer.
