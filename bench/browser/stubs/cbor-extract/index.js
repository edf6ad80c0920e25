throw new Error('cbor-extract stand-in: no native accelerator');
