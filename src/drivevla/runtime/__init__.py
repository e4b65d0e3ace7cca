"""The real-time runtime around any policy: deadlines, a watchdog with a fallback, an
explanation worker off the control path, and fault injection (docs/runtime.md)."""
