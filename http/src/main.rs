//! The `mall` binary: `mall [serve|migrate|cluster status] [--config PATH]`.

use std::path::PathBuf;
use std::process::ExitCode;

use mall_http::config::Config;

const USAGE: &str = "usage: mall [serve|migrate|cluster status] [--config PATH]

  serve           run the HTTP server (the default)
  migrate         apply pending database migrations and exit
  cluster status  print the cluster's members and shard owners, read from etcd
  --config  read PATH instead of ./config.toml; MALL__SECTION__KEY variables override either";

enum Command {
    Serve,
    Migrate,
    ClusterStatus,
}

fn parse_args() -> Result<(Command, Option<PathBuf>), String> {
    let mut command = None;
    let mut config = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "serve" | "migrate" if command.is_none() => {
                command = Some(if arg == "serve" {
                    Command::Serve
                } else {
                    Command::Migrate
                });
            }
            "cluster" if command.is_none() => match args.next().as_deref() {
                Some("status") => command = Some(Command::ClusterStatus),
                _ => return Err("cluster: expected `cluster status`".into()),
            },
            "--config" => config = Some(PathBuf::from(args.next().ok_or("--config needs a PATH")?)),
            s if s.starts_with("--config=") => {
                config = Some(PathBuf::from(&s["--config=".len()..]))
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok((command.unwrap_or(Command::Serve), config))
}

fn main() -> ExitCode {
    let (command, path) = match parse_args() {
        Ok(parsed) => parsed,
        Err(why) if why.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("mall: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mall: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = mall_http::telemetry::init(&config.log, &config.telemetry);
    let code = run(command, config);
    // Outside the async runtime, which has stopped: the queued spans leave before the exit.
    telemetry.shutdown();
    code
}

fn run(command: Command, config: Config) -> ExitCode {
    match command {
        Command::ClusterStatus => mall_http::cluster::status_command(&config),
        Command::Migrate => match mall_db::migrate::run_pending(&config.database.url) {
            Ok(applied) => {
                tracing::info!(applied = applied.len(), versions = ?applied, "migrations applied");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mall: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve => {
            if let Err(e) = config.check_for_serve() {
                eprintln!("mall: {e}");
                return ExitCode::from(2);
            }
            // Migrations run before the actix runtime starts: diesel's harness blocks on its own.
            if config.database.auto_migrate
                && let Err(e) = mall_db::migrate::run_pending(&config.database.url)
            {
                eprintln!("mall: {e}");
                return ExitCode::FAILURE;
            }
            match actix_web::rt::System::new().block_on(mall_http::server::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "mall stopped");
                    eprintln!("mall: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
