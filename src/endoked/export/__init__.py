"""export: a run's pseudo labels as a PraNet-layout folder, COCO instances JSON or an nnU-Net v2 raw dataset."""
