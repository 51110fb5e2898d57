"""Library shared by the orthanc-share services: models, tokens, settings and clients."""
