"""Hardware faked at the byte boundary: pty pairs for serial sensors, register maps for I2C parts."""
