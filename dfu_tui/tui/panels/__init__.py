"""The monitor's panels: each a widget in its own file that draws itself from a `MonitorView`
and touches the screen only where what it shows changed (`base.Panel`)."""
