from tui.lab import main

raise SystemExit(main())
