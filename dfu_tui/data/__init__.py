"""Reading the clinic's dataset format: metadata, images, bounding boxes, the demo."""
