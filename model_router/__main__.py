from model_router.cli import main

raise SystemExit(main())
