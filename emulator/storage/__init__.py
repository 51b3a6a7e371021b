"""A minimal blob store: uploaded VHD files that gallery image versions can be created from."""
