from model_router_tools.cli.main import main

raise SystemExit(main())
