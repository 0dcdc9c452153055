package Test::Nginx::Socket;

# A self-contained, compatible subset of openresty's Test::Nginx::Socket
# (https://github.com/openresty/test-nginx), written for this project because
# upstream is not packaged in Debian and CPAN is unreachable here.  It only
# needs core Perl plus Debian's Test::Base.  The same .t files run under both:
#
#     prove -I t/lib -r t        # this subset
#     prove -r t                 # upstream Test::Nginx, if installed
#
# See /work/shared/nginx-module-notes.md section 3 for the spec, and the POD
# at the end of this file for what is (and is not) supported.
#
# NOTE ON STYLE: "use Test::Base -Base" runs Spiffy's source filter over this
# file.  The filter inserts "my $self = shift;" into every "sub name {"
# without a prototype and strips an empty prototype written "sub name () {".
# Therefore every sub here has a prototype, and subs that take no arguments
# are written "sub name(){" (no blank before the brace), which the filter
# leaves alone, so that e.g. "html_dir . '/x'" parses as it does upstream.

use Test::Base -Base;

our $VERSION = '0.29_subset';

use POSIX ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR EPERM ECONNREFUSED);
use Time::HiRes qw(sleep time);
use IO::Socket::INET ();
use File::Path qw(make_path remove_tree);
use File::Spec ();
use List::Util qw(shuffle min);
use Scalar::Util qw(looks_like_number);
use Digest::MD5 ();
use Digest::SHA ();

our @EXPORT = qw(
    run_tests run_test repeat_each no_shuffle workers worker_connections
    master_on master_off master_process_enabled log_level no_root_location
    env_to_nginx server_port server_port_for_client server_addr server_name
    server_root html_dir timeout add_block_preprocessor
    add_response_body_check add_cleanup_handler check_accum_error_log
    no_long_string bail_out config_preamble
);

# ---------------------------------------------------------------------------
# Forward declarations (prototypes must be known before the first call).
# ---------------------------------------------------------------------------

sub find_in_path ($);
sub gen_rand_port ($$);
sub bail_out (@);
sub parse_time ($);
sub html_dir ();
sub server_root ();
sub run_test ($);
sub run_test_helper ($$);
sub run_must_die ($$);
sub block_skip_info ($);
sub get_nginx_version ();
sub canon_version (@);
sub setup_server_root ();
sub write_user_files ($$);
sub write_config_file ($$$);
sub expand_env_in_text ($$$);
sub exec_nginx ($);
sub start_nginx ($);
sub stop_nginx ($);
sub read_pid_file ();
sub wait_for_pid_file ($);
sub wait_for_listen ($);
sub port_is_listening ($$);
sub process_alive ($);
sub process_is_nginx ($);
sub process_group ($);
sub last_emerg_line ();
sub run_cleanup_handlers ();
sub finish_tests ();
sub check_prev_block_shutdown_error_log ();
sub error_log_data ();
sub normalize_patterns ($);
sub check_error_log ($$);
sub check_shutdown_error_log ($$);
sub parse_more_headers ($);
sub headers_for_request ($$$);
sub parse_request_line ($$);
sub build_request ($$$$$);
sub apply_edits ($$);
sub get_req_from_block ($);
sub connect_to_server ($);
sub send_request ($$$$);
sub parse_response ($$$);
sub decode_chunked ($$);
sub res_header ($$);
sub get_indexed_value ($$$$);
sub check_error_code ($$$$$);
sub check_raw_response_headers ($$$$);
sub parse_headers ($);
sub check_response_headers ($$$$$);
sub transform_response_body ($$$);
sub run_body_filter ($$$);
sub check_response_body ($$$$$);
sub is_str ($$$);
sub describe_string_diff ($$);
sub show_str ($);
sub fmt_str ($);
sub trim ($);

# ---------------------------------------------------------------------------
# Configuration, from the environment (same variables as upstream).
# ---------------------------------------------------------------------------

our $Verbose     = $ENV{TEST_NGINX_VERBOSE};
our $NginxBinary = $ENV{TEST_NGINX_BINARY} || find_in_path('nginx')
                   || '/usr/sbin/nginx';

our $ServerAddr = '127.0.0.1';
our $ServerName = 'localhost';
our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;

# TEST_NGINX_RANDOMIZE: a free random port and a servroot of our own, so that
# several .t files can run in parallel (prove -jN).
our $Randomize = $ENV{TEST_NGINX_RANDOMIZE};
if ($Randomize) {
    $ServerPort = gen_rand_port(1000, {})
        or die "Test::Nginx::Socket: cannot find a free port for "
               . "TEST_NGINX_RANDOMIZE\n";
    $ServerPortForClient = $ServerPort;
}

our $ServRoot = File::Spec->rel2abs(
    $Randomize ? "t/servroot_$ServerPort"
               : ($ENV{TEST_NGINX_SERVROOT} || 't/servroot'));

our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";

# Exported right away (upstream does it in run_tests) so that helper modules
# such as t/MDM.pm can already use them at load time.
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;
$ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;

our $RepeatEach        = 1;
our $NoShuffle         = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $LogLevel          = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $Timeout           = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $LoadModules       = $ENV{TEST_NGINX_LOAD_MODULES};
our $CheckAccumErrLog  = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $TestNginxSleep    = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $MasterProcessEnabled =
    ($ENV{TEST_NGINX_MASTER_PROCESS} || 'off') =~ /^(?:on|1|yes)$/i
    ? 'on' : 'off';
our $Workers           = 1;
our $WorkerConnections = 64;
our $NoRootLocation    = 0;
our $NoLongString;
our $ConfigPreamble    = '';

our @EnvToNginx;
our @BlockPreprocessors;
our @ResponseBodyChecks;
our @CleanupHandlers;

# Run-time state.
our $PrevConfig;        # config of the nginx currently running
our $PrevBlock;         # block whose shutdown_error_log is still pending
our $ErrLogFilePos = 0; # error.log offset already examined by the checks
our $BlockErrLogStart = 0; # error.log size when the current block began
our $NginxPid;          # pid of the nginx we started (also in $PidFile)
our $NginxVersion;      # canonical version, e.g. 1.022001
our $NginxConfigureArgs = '';
our $MainPid = $$;      # END must do nothing in forked children

# A test interrupted by ^C or kill must still stop its nginx (END runs on
# exit(), not on a fatal signal).  Only install handlers nobody else set.
my %SigNum = (HUP => 1, INT => 2, TERM => 15);
for my $sig (sort keys %SigNum) {
    if (!$SIG{$sig} || $SIG{$sig} eq 'DEFAULT') {
        $SIG{$sig} = sub { exit 128 + $SigNum{$sig} };
    }
}

# ---------------------------------------------------------------------------
# Exported setters/getters.  Arguments set, no arguments get (as upstream).
# ---------------------------------------------------------------------------

sub repeat_each (@) {
    $RepeatEach = shift if @_;
    return $RepeatEach;
}

sub no_shuffle(){
    $NoShuffle = 1;
}

sub workers (@) {
    $Workers = shift if @_;
    return $Workers;
}

sub worker_connections (@) {
    $WorkerConnections = shift if @_;
    return $WorkerConnections;
}

sub master_on(){
    $MasterProcessEnabled = 'on';
}

sub master_off(){
    $MasterProcessEnabled = 'off';
}

sub master_process_enabled (@) {
    $MasterProcessEnabled = shift() ? 'on' : 'off' if @_;
    return $MasterProcessEnabled;
}

sub log_level (@) {
    $LogLevel = shift if @_;
    return $LogLevel;
}

sub no_root_location(){
    $NoRootLocation = 1;
}

sub check_accum_error_log(){
    $CheckAccumErrLog = 1;
}

sub no_long_string(){
    $NoLongString = 1;
}

sub config_preamble ($) {
    $ConfigPreamble = shift;
}

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" unless @_;
    for my $v (@_) {
        croak "env_to_nginx: bad argument value: $v"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub server_addr (@) {
    $ServerAddr = shift if @_;
    return $ServerAddr;
}

sub server_name (@) {
    $ServerName = shift if @_;
    return $ServerName;
}

sub server_port (@) {
    if (@_) {
        # Keep the client pointed at the server unless they were decoupled.
        my $follow = $ServerPortForClient == $ServerPort;
        $ServerPort = shift;
        $ServerPortForClient = $ServerPort if $follow;
        $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
    }
    return $ServerPort;
}

sub server_port_for_client (@) {
    $ServerPortForClient = shift if @_;
    return $ServerPortForClient;
}

sub server_root(){
    return $ServRoot;
}

sub html_dir(){
    return $HtmlDir;
}

sub timeout (@) {
    $Timeout = shift if @_;
    return $Timeout;
}

# Upstream unshifts, so the preprocessor added last runs first.
sub add_block_preprocessor (&) {
    unshift @BlockPreprocessors, shift;
}

# Called as $check->($block, $body, $req_idx, $repeated_req_idx, $dry_run)
# after the status/header/body checks of each response, in the order added.
sub add_response_body_check ($) {
    push @ResponseBodyChecks, shift;
}

sub add_cleanup_handler ($) {
    unshift @CleanupHandlers, shift;
}

sub bail_out (@) {
    run_cleanup_handlers();
    stop_nginx('bail_out') unless $ENV{TEST_NGINX_NO_CLEAN};
    Test::More::BAIL_OUT(join '', @_);
}

# ---------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------

sub find_in_path ($) {
    my $cmd = shift;
    for my $dir (split /:/, $ENV{PATH} || '') {
        next if $dir eq '';
        my $abs = "$dir/$cmd";
        return $abs if -f $abs && -x _;
    }
    return undef;
}

# A random port in 1985..65535 that we can bind right now.
sub gen_rand_port ($$) {
    my ($tries, $used) = @_;
    for (1 .. $tries) {
        my $port = int(rand 63550) + 1985;
        next if $used->{$port};
        my $sock = IO::Socket::INET->new(
            LocalAddr => $ServerAddr,
            LocalPort => $port,
            Proto     => 'tcp',
        );
        if ($sock) {
            close $sock;
            return $port;
        }
    }
    return undef;
}

# "1.5" => 1.5, "300ms" => 0.3, "2s" => 2 (section values like --- timeout).
sub parse_time ($) {
    my $tm = shift;
    return undef unless defined $tm;
    $tm =~ s/^\s+|\s+$//g;
    if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
        $tm /= 1000;
    } else {
        $tm =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $tm;
}

sub trim ($) {
    my $s = shift;
    return undef unless defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /gs;
    $s =~ s/\s{2,}/ /gs;
    return $s;
}

# One-line rendering of a log line or pattern for test names.
sub fmt_str ($) {
    my $str = shift;
    chomp $str;
    $str =~ s/"/\\"/g;
    $str =~ s/\r/\\r/g;
    $str =~ s/\n/\\n/g;
    return $str;
}

# Printable rendering of arbitrary bytes for diagnostics.
sub show_str ($) {
    my $s = shift;
    return 'undef' unless defined $s;
    $s =~ s/\\/\\\\/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    $s =~ s/\t/\\t/g;
    $s =~ s/([\x00-\x1f\x7f-\xff])/sprintf('\\x%02x', ord $1)/ge;
    return "\"$s\"";
}

# String comparison with a readable diagnostic for long strings (upstream
# uses Test::LongString, which is not installed here).
sub is_str ($$$) {
    my ($got, $expected, $desc) = @_;

    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }

    if ($NoLongString || !defined $got || !defined $expected) {
        return Test::More::is($got, $expected, $desc);
    }

    my $ok = Test::More::ok($got eq $expected, $desc);
    Test::More::diag(describe_string_diff($got, $expected)) unless $ok;
    return $ok;
}

sub describe_string_diff ($$) {
    my ($got, $expected) = @_;

    my $i = 0;
    my $max = min(length $got, length $expected);
    $i++ while $i < $max && substr($got, $i, 1) eq substr($expected, $i, 1);

    my $line = 1 + (() = substr($got, 0, $i) =~ /\n/g);
    my $from = $i > 20 ? $i - 20 : 0;

    my $msg = sprintf "strings differ at offset %d (line %d); "
                      . "got length %d, expected length %d\n",
                      $i, $line, length $got, length $expected;

    if (length($got) + length($expected) <= 600) {
        $msg .= "         got: " . show_str($got) . "\n"
              . "    expected: " . show_str($expected) . "\n";
    } else {
        $msg .= "         got: ..." . show_str(substr $got, $from, 60) . "...\n"
              . "    expected: ..." . show_str(substr $expected, $from, 60)
              . "...\n";
    }

    return $msg;
}

# ---------------------------------------------------------------------------
# Driving the blocks
# ---------------------------------------------------------------------------

sub run_tests(){
    $NginxVersion = get_nginx_version() unless defined $NginxVersion;

    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;

    for my $block (@blocks) {
        # A block that reuses the running nginx checks only what was logged
        # from here on, including what its preprocessors' actions caused.
        $BlockErrLogStart = (defined $ErrLogFile && -s $ErrLogFile) || 0;

        # Preprocessors run right before their block (so they see the state
        # left by the previous one) and may rewrite any section.
        for my $hdl (@BlockPreprocessors) {
            $hdl->($block);
        }

        $block->set_value(name => "$0 " . $block->name);
        run_test($block);
    }

    finish_tests();
}

# Stop nginx and run the checks still pending after the last block.
sub finish_tests(){
    run_cleanup_handlers();
    stop_nginx('run_tests') unless $ENV{TEST_NGINX_NO_CLEAN};
    check_prev_block_shutdown_error_log();
}

# Each handler runs once, whether the run ends normally, bails out or dies.
sub run_cleanup_handlers(){
    my @handlers = @CleanupHandlers;
    @CleanupHandlers = ();
    for my $hdl (@handlers) {
        $hdl->();
    }
}

# "--- skip_nginx: 3: < 1.21.0 [: reason]" and "--- skip_eval: 3: <perl>".
# Returns (number of tests to skip, reason) when the block must be skipped.
sub block_skip_info ($) {
    my $block = shift;
    my $name = $block->name;

    my $skip_eval = $block->skip_eval;
    if (defined $skip_eval) {
        if ($skip_eval =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            my ($n, $code) = ($1, $2);
            my $skip = eval "package main; $code";
            bail_out("$name - skip_eval - failed to eval \"$code\": $@")
                if $@;
            return ($n, 'skip_eval') if $skip;
        } else {
            bail_out("$name - Invalid --- skip_eval spec: $skip_eval");
        }
    }

    my $skip_nginx = $block->skip_nginx;
    if (defined $skip_nginx) {
        if ($skip_nginx =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)
                            (?:\s*:\s*(.*))?\s*$/x)
        {
            my ($n, $op, $reason) = ($1, $2, $6);
            my $ver = canon_version($3, $4, $5);
            $reason ||= "nginx version $op $3.$4.$5";
            return ($n, $reason) if eval "$NginxVersion $op $ver";
        } else {
            bail_out("$name - Invalid --- skip_nginx spec: $skip_nginx");
        }
    }

    return;
}

sub run_test ($) {
    my $block = shift;

    # Test::Base already drops SKIP blocks; this is a safety net.
    return if defined $block->SKIP;

    my $name = $block->name;
    my $rand_ports = {};    # $TEST_NGINX_RAND_PORT_N values of this block

    $NginxVersion = get_nginx_version() unless defined $NginxVersion;

    my $config = $block->config;
    my $should_start = 1;

    if (!defined $config) {
        # As upstream: a block without --- config keeps talking to the
        # nginx started for the previous block (it is not restarted).
        bail_out("$name - No '--- config' section specified and could not "
                 . "get previous one.")
            unless defined $PrevConfig;
        $should_start = 0;
    } else {
        $config = expand_env_in_text($config, $name, $rand_ports);
    }

    my $level = $block->log_level;
    local $LogLevel = $level if $level;

    my ($skip_n, $skip_reason) = block_skip_info($block);
    if (defined $skip_n) {
        my $tb = Test::More->builder;
        for (1 .. $RepeatEach * $skip_n) {
            $tb->skip("$name - $skip_reason");
        }
        return;
    }

    if ($should_start) {
        $PrevConfig = $config;

        stop_nginx($name);
        check_prev_block_shutdown_error_log();

        setup_server_root();
        write_user_files($block, $rand_ports);
        write_config_file($block, $config, $rand_ports);

        if (defined $block->must_die) {
            run_must_die($block, $name);
            $PrevBlock = $block;
            return;
        }

        start_nginx($block);
    }

    my $init = $block->init;
    if ($init) {
        eval "package main; $init; 1"
            or bail_out("$name - init failed: $@");
    }

    $ErrLogFilePos = $should_start ? 0 : $BlockErrLogStart;
    for my $i (0 .. $RepeatEach - 1) {
        write_user_files($block, $rand_ports) if $i > 0;
        run_test_helper($block, $i);
    }

    $PrevBlock = $block;

    # TEST_NGINX_ERROR_LOG: collect every block's error.log in one file.
    if (my $total = $ENV{TEST_NGINX_ERROR_LOG}) {
        if (-s $ErrLogFile && open my $out, '>>', $total) {
            print $out "\n=== $name\n";
            if (open my $in, '<', $ErrLogFile) {
                local $/;
                print $out scalar <$in>;
                close $in;
            }
            close $out;
        }
    }
}

# --- must_die: nginx must refuse to start; repeated repeat_each times.
sub run_must_die ($$) {
    my ($block, $name) = @_;

    my $must_die = $block->must_die;
    my $quiet    = defined $block->suppress_stderr;

    $ErrLogFilePos = 0;

    for my $i (0 .. $RepeatEach - 1) {
        my $status = exec_nginx($quiet);

        if ($status == -1) {
            Test::More::fail("$name - failed to execute the nginx command line");
        } elsif ($status & 128) {
            Test::More::fail("$name - nginx core dumped");
        } elsif (looks_like_number($must_die)) {
            Test::More::is($status >> 8, $must_die,
                           "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }

        check_error_log($block, $i);

        if ($status == 0) {
            warn "WARNING: $name - nginx must die but it does not; "
                 . "killing it (req $i)\n";
            wait_for_pid_file(1);
            stop_nginx($name);
        }
    }
}

# ---------------------------------------------------------------------------
# nginx process management
# ---------------------------------------------------------------------------

sub canon_version (@) {
    return sprintf "%d.%03d%03d", @_[0 .. 2];
}

sub get_nginx_version(){
    if (!-f $NginxBinary || !-x _) {
        bail_out("Cannot find the nginx executable \"$NginxBinary\" "
                 . "(set TEST_NGINX_BINARY)");
    }

    my $out = qx{\Q$NginxBinary\E -V 2>&1};
    if (!defined $out || $? != 0) {
        bail_out("Failed to get the version of the nginx \"$NginxBinary\": "
                 . ($out // ''));
    }

    ($NginxConfigureArgs) = $out =~ /configure arguments:(.*)/;
    $NginxConfigureArgs //= '';

    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}) {
        return canon_version($1, $2, $3);
    }

    bail_out("Failed to parse the output of \"$NginxBinary -V\": $out");
}

# Recreate servroot/{conf,html,logs}.  Only our own subdirectories are
# removed, so a mis-set TEST_NGINX_SERVROOT cannot wipe unrelated data.
sub setup_server_root(){
    remove_tree($ConfDir, $HtmlDir, $LogDir,
                glob("$ServRoot/*_temp"), glob("$ServRoot/*_cache"));

    for my $dir ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        next if -d $dir;
        make_path($dir);
        bail_out("Failed to do mkdir $dir: $!") unless -d $dir;
    }

    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!");
    print $out '<html><head><title>It works!</title></head>'
               . '<body>It works!</body></html>';
    close $out;
}

# --- user_files: ">>> name [touch date]" followed by the file's content;
# relative names go into html/.  An eval'd [[name, body, date], ...] works too.
sub write_user_files ($$) {
    my ($block, $rand_ports) = @_;
    my $name = $block->name;

    my $files = $block->user_files;
    return unless $files;

    if (!ref $files) {
        my @list;
        my ($fname, $body, $date);
        for my $line (split /^/, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$fname, $body, $date] if defined $fname;
                ($fname, $date, $body) = ($1, $2, undef);
            } else {
                $body .= $line;
            }
        }
        push @list, [$fname, $body, $date] if defined $fname;
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: " . ref($files)
                 . ", only scalar or ARRAY are accepted");
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        $body = '' unless defined $body;

        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/} && !-d $1) {
            make_path($1);
            bail_out("$name - Cannot create directory $1") unless -d $1;
        }

        $body = expand_env_in_text($body, $name, $rand_ports);

        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!");
        binmode $out;
        print $out $body;
        close $out;

        if ($date) {
            local $ENV{TZ} = 'GMT';
            system('touch', '-t', $date, $path) == 0
                or bail_out("$name - Failed to run touch -t '$date' $path");
        }
    }
}

# Replace $TEST_NGINX_XXX by the environment variable; an undefined one
# aborts the run.  $TEST_NGINX_RAND_PORT_N becomes a free port, the same one
# everywhere within a block.
sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;
    return undef unless defined $text;

    my %used = ($ServerPort => 1, map { $_ => 1 } values %$rand_ports);

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $val;
        if ($var =~ /^TEST_NGINX_RAND_PORT_[0-9]+$/) {
            if (!defined $rand_ports->{$var}) {
                my $port = gen_rand_port(1000, \%used);
                bail_out("$name - Cannot find an available listening port "
                         . "number for $var.")
                    unless defined $port;
                $rand_ports->{$var} = $port;
                $used{$port} = 1;
            }
            $val = $rand_ports->{$var};
        } else {
            bail_out("$name - No environment $var defined.")
                unless defined $ENV{$var};
            $val = $ENV{$var};
        }
        $val;
    }ge;

    return $text;
}

sub write_config_file ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    my $main_config      = $block->main_config;
    my $http_config      = $block->http_config;
    my $post_main_config = $block->post_main_config;
    my $server_name      = $block->server_name;

    $main_config      = expand_env_in_text($main_config // '', $name,
                                           $rand_ports);
    $http_config      = expand_env_in_text($http_config // '', $name,
                                           $rand_ports);
    $post_main_config = expand_env_in_text($post_main_config // '', $name,
                                           $rand_ports);
    $config           = '' unless defined $config;
    $server_name      = $ServerName unless defined $server_name;
    $server_name      =~ s/(['\\])/\\$1/g;

    # load_module must come before anything that uses the module.
    my $load_modules = '';
    if ($LoadModules) {
        $load_modules = join '', map { "load_module $_;\n" }
                                 grep { length } split /\s+/, $LoadModules;
    }

    # Debian's default temp paths (/var/lib/nginx) are not writable by
    # everyone; keep them in servroot (skipping modules built out).
    my $temp_paths = '';
    for my $mod (qw(client_body proxy fastcgi uwsgi scgi)) {
        next if $mod ne 'client_body'
                && $NginxConfigureArgs =~ /--without-http_${mod}_module/;
        $temp_paths .= "    ${mod}_temp_path $ServRoot/${mod}_temp;\n";
    }

    my $env = '';
    for my $v (qw(MOCKEAGAIN_VERBOSE MOCKEAGAIN
                  MOCKEAGAIN_WRITE_TIMEOUT_PATTERN LD_PRELOAD
                  LD_LIBRARY_PATH ASAN_OPTIONS), @EnvToNginx)
    {
        my $quoted = $v =~ /\s/ ? "'$v'" : $v;
        $env .= "env $quoted;\n";
    }

    my $root_location = $NoRootLocation ? '' : <<_EOC_;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $user = $> == 0 ? "user root;\n" : '';

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!");

    print $out <<_EOC_;
${load_modules}worker_processes  $Workers;
daemon on;
master_process $MasterProcessEnabled;
error_log $ErrLogFile $LogLevel;
pid       $PidFile;
$env
$main_config

http {
    access_log $AccLogFile;
$temp_paths
    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config

    server {
        listen          $ServerAddr:$ServerPort;
        server_name     '$server_name';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
}
$user
_EOC_

    close $out or bail_out("Failed to write $ConfFile: $!");
}

# Run the nginx binary once; returns the wait status (-1: exec failed).
# With "daemon on" the command returns as soon as nginx has bound its
# sockets and forked, or with an error status if the config is bad.
sub exec_nginx ($) {
    my $quiet_stderr = shift;

    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', 'conf/nginx.conf',
               '-e', 'logs/error.log');

    warn "running @cmd\n" if $Verbose;

    my $pid = fork();
    if (!defined $pid) {
        warn "fork() failed: $!\n";
        return -1;
    }

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null' if $quiet_stderr;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0] failed: $!\n";
        POSIX::_exit(127);    # no END blocks in the child
    }

    # A config that sets "daemon off" would never return; don't hang on it.
    my $deadline = time + 30;
    while (1) {
        my $rc = waitpid($pid, POSIX::WNOHANG());
        if ($rc == $pid) {
            my $status = $?;
            return $status == 127 << 8 ? -1 : $status;
        }
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            return -1;
        }
        sleep 0.002;
    }
}

sub start_nginx ($) {
    my $block = shift;
    my $name = $block->name;

    my $waited = 0;
    while (1) {
        my $status = exec_nginx(0);
        last if $status == 0;

        # An old nginx that still holds the port is worth waiting for; any
        # other failure is a broken config and retrying won't help.
        my $why = last_emerg_line();
        if ($why =~ /Address already in use/ && $waited < 10) {
            sleep 0.5;
            $waited += 0.5;
            next;
        }

        bail_out("$name - Cannot start nginx using command \"$NginxBinary "
                 . "-p $ServRoot/ -c conf/nginx.conf -e logs/error.log\" "
                 . "(status code $status): "
                 . ($why || "see $ErrLogFile"));
    }

    # The pid file is written by the daemonized child, which may lag behind.
    $NginxPid = wait_for_pid_file($Timeout);
    warn "WARNING: $name - nginx did not write $PidFile\n"
        unless $NginxPid;

    wait_for_listen($name);

    sleep $TestNginxSleep;
}

sub read_pid_file(){
    open my $in, '<', $PidFile or return undef;
    my $pid = <$in>;
    close $in;
    return undef unless defined $pid && $pid =~ /^\s*(\d+)/;
    return $1;
}

sub wait_for_pid_file ($) {
    my $limit = shift;
    my $deadline = time + $limit;
    while (1) {
        my $pid = read_pid_file();
        return $pid if $pid;
        return undef if time > $deadline;
        sleep 0.002;
    }
}

# Make sure the server socket is listening.  Looks at /proc/net/tcp rather
# than connecting, so that no extra connection shows up in error.log.
sub wait_for_listen ($) {
    my $name = shift;
    my $deadline = time + $Timeout;
    while (1) {
        my $state = port_is_listening($ServerAddr, $ServerPort);
        return if $state;
        if (!defined $state) {
            # No /proc: fall back to a plain connection attempt.
            my $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr,
                                             PeerPort => $ServerPort,
                                             Proto    => 'tcp',
                                             Timeout  => 0.5);
            return if $sock;
        }
        if (time > $deadline) {
            warn "WARNING: $name - nginx is not listening on "
                 . "$ServerAddr:$ServerPort\n";
            return;
        }
        sleep 0.005;
    }
}

# 1 = listening, 0 = not (yet), undef = cannot tell.
sub port_is_listening ($$) {
    my ($addr, $port) = @_;
    open my $in, '<', '/proc/net/tcp' or return undef;
    my $want_port = sprintf '%04X', $port;
    my $want_addr = join '', map { sprintf '%02X', $_ }
                             reverse split /\./, $addr;
    while (my $line = <$in>) {
        # sl local_address rem_address st ...; 0A = LISTEN
        if ($line =~ /^\s*\d+:\s+([0-9A-F]{8}):([0-9A-F]{4})\s+\S+\s+0A\s/
            && $2 eq $want_port
            && ($1 eq $want_addr || $1 eq '00000000'))
        {
            return 1;
        }
    }
    return 0;
}

# kill 0 is not enough: a daemonized nginx is re-parented to PID 1 and can
# stay a zombie for a while.  A zombie has exited (and closed its sockets).
sub process_alive ($) {
    my $pid = shift;
    return 0 unless $pid;
    return 0 if !kill(0, $pid) && $! != EPERM;
    if (open my $in, '<', "/proc/$pid/stat") {
        my $stat = <$in>;
        close $in;
        return 0 if defined $stat && $stat =~ /\)\s+([ZX])\s/;
    }
    return 1;
}

# Guard against a stale pid file whose pid now belongs to someone else.
sub process_is_nginx ($) {
    my $pid = shift;
    open my $in, '<', "/proc/$pid/cmdline" or return 1;    # can't tell
    my $cmd = do { local $/; <$in> } // '';
    close $in;
    my ($base) = $NginxBinary =~ m{([^/]+)$};
    return $cmd =~ /nginx/ || index($cmd, $base) >= 0;
}

sub process_group ($) {
    my $pid = shift;
    open my $in, '<', "/proc/$pid/stat" or return undef;
    my $stat = <$in>;
    close $in;
    return $stat =~ /\)\s+\S+\s+\d+\s+(\d+)/ ? $1 : undef;
}

# Graceful stop (QUIT), escalating to TERM and then KILL.  nginx deletes its
# pid file on exit, but we wait for the process itself (see process_alive).
sub stop_nginx ($) {
    my $name = shift;

    my $pid = read_pid_file() || $NginxPid;
    undef $NginxPid;

    if ($pid && process_alive($pid) && process_is_nginx($pid)) {
        warn "sending QUIT to nginx $pid\n" if $Verbose;
        kill 'QUIT', $pid;

        my $deadline = time + $Timeout;
        sleep 0.002 while process_alive($pid) && time < $deadline;

        if (process_alive($pid)) {
            warn "WARNING: $name - timeout when waiting for nginx $pid to "
                 . "exit; sending TERM\n";
            for (1 .. 20) {
                last unless process_alive($pid);
                kill 'TERM', $pid;
                sleep 0.05;
            }
        }

        if (process_alive($pid)) {
            warn "WARNING: $name - killing nginx $pid with force\n";
            # nginx calls setsid() when daemonizing: kill its workers too.
            my $pgrp = process_group($pid);
            kill 'KILL', (defined $pgrp && $pgrp == $pid) ? -$pid : $pid;
            my $deadline = time + 1;
            sleep 0.01 while process_alive($pid) && time < $deadline;
        }
    }

    # A killed nginx leaves its pid file behind.
    unlink $PidFile if -f $PidFile;
}

# The last "[emerg]" line of error.log, to explain a failed start.
sub last_emerg_line(){
    open my $in, '<', $ErrLogFile or return '';
    my $last = '';
    while (my $line = <$in>) {
        $last = $line if $line =~ /\[emerg\]/;
    }
    close $in;
    chomp $last;
    return $last;
}

END {
    return if !defined $MainPid || $$ != $MainPid;

    # Keep the script's exit status: Test::Builder's END (which runs after
    # this one) reports it, and waitpid/system would clobber it.
    local $?;

    run_cleanup_handlers();
    stop_nginx('END') unless $ENV{TEST_NGINX_NO_CLEAN};

    if ($Randomize && !$ENV{TEST_NGINX_NO_CLEAN}
        && defined $ServRoot && $ServRoot =~ m{/t/servroot_\d+$})
    {
        remove_tree($ServRoot);
    }
}

# ---------------------------------------------------------------------------
# error.log checks
# ---------------------------------------------------------------------------

# Lines of error.log written since the previous call (all of them with
# check_accum_error_log).
sub error_log_data(){
    # Give nginx a moment to write what it logs after closing the connection.
    sleep $TestNginxSleep * 3;

    open my $in, '<', $ErrLogFile or return [];
    seek $in, $ErrLogFilePos, 0 if !$CheckAccumErrLog && $ErrLogFilePos;
    my @lines = <$in>;
    $ErrLogFilePos = tell $in unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

# A section value as a list of patterns: one substring per line, or eval'd
# qr// (or an array of strings and qr//s).
sub normalize_patterns ($) {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [ split /\n+/, $pats ];
    }
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats];
}

sub check_error_log ($$) {
    my ($block, $repeated_req_idx) = @_;
    my $name = $block->name;
    my $lines;

    # --- grep_error_log / grep_error_log_out
    my $grep_pat = $block->grep_error_log;
    if (defined $grep_pat) {
        $grep_pat = $grep_pat->[$repeated_req_idx] if ref $grep_pat eq 'ARRAY';
    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but "
                 . "--- grep_error_log_out is defined");
    }

    if (defined $grep_pat) {
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but "
                 . "--- grep_error_log is defined")
            unless defined $expected;

        $expected = $expected->[$repeated_req_idx] if ref $expected eq 'ARRAY';
        $expected = expand_env_in_text($expected, $name, {}) unless ref $expected;

        $lines ||= error_log_data();

        my $matched_lines = '';
        for my $line (@$lines) {
            if (ref $grep_pat && $line =~ /$grep_pat/
                || !ref $grep_pat && $line =~ /\Q$grep_pat\E/)
            {
                my $matched = $&;
                $matched_lines .= "$matched\n" if $matched !~ /\n/;
            }
        }

        is_str($matched_lines, $expected,
               "$name - grep_error_log_out (req $repeated_req_idx)");
    }

    my %mentioned;    # severities named in the patterns: no warning for them

    # --- error_log: every pattern must match some line.
    if (defined(my $pats = $block->error_log)) {
        $pats = normalize_patterns($pats);
        for my $sev (qw(alert crit emerg)) {
            $mentioned{$sev} = 1 if grep { "$_" =~ /\[\Q$sev\E/ } @$pats;
        }

        $lines ||= error_log_data();
        for my $line (@$lines) {
            for my $pat (@$pats) {
                next unless defined $pat;
                if (ref $pat ? $line =~ /$pat/ : $line =~ /\Q$pat\E/) {
                    Test::More::pass("$name - pattern \"$pat\" matches a line "
                                     . "in error.log (req $repeated_req_idx)");
                    undef $pat;
                }
            }
        }

        for my $pat (@$pats) {
            next unless defined $pat;
            Test::More::fail("$name - pattern \"$pat\" should match a line "
                             . "in error.log (req $repeated_req_idx)");
        }
    }

    # --- no_error_log: no pattern may match any line.
    if (defined(my $pats = $block->no_error_log)) {
        $pats = normalize_patterns($pats);
        for my $sev (qw(alert crit emerg)) {
            $mentioned{$sev} = 1 if grep { "$_" =~ /\[\Q$sev\E/ } @$pats;
        }

        $lines ||= error_log_data();
        my %found;
        for my $i (0 .. $#$lines) {
            my $line = $lines->[$i];
            for my $pat (@$pats) {
                next unless defined $pat;
                next unless ref $pat ? $line =~ /$pat/ : $line =~ /\Q$pat\E/;

                # Every offending line is reported, as upstream does.
                $found{$pat} = 1;
                my $more = join '', @$lines[$i + 1 .. min($i + 9, $#$lines)];
                Test::More::fail("$name - pattern \"" . fmt_str($pat)
                                 . "\" should not match any line in error.log "
                                 . "but matches line \"" . fmt_str($line)
                                 . "\" (req $repeated_req_idx)\n" . $more);
            }
        }

        for my $pat (@$pats) {
            next if !defined $pat || $found{$pat};
            Test::More::pass("$name - pattern \"" . fmt_str($pat)
                             . "\" does not match a line in error.log "
                             . "(req $repeated_req_idx)");
        }
    }

    # Serious messages nobody asked about are at least shown.
    for my $sev (qw(alert crit emerg)) {
        next if $mentioned{$sev};
        $lines ||= error_log_data();
        for my $line (@$lines) {
            warn "WARNING: $name - " . fmt_str($line) . "\n"
                if $line =~ /\[\Q$sev\E\]/;
        }
    }

    for my $line (@{ $lines || [] }) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            Test::More::fail("$name - $l");
        }
    }
}

# --- shutdown_error_log / no_shutdown_error_log of the previous block, once
# its nginx has been stopped.  As upstream, no_shutdown_error_log is only
# looked at when shutdown_error_log is present.
sub check_prev_block_shutdown_error_log(){
    my $block = $PrevBlock;
    undef $PrevBlock;
    return unless defined $block;

    if (!defined $block->shutdown_error_log) {
        warn "WARNING: " . $block->name . " - --- no_shutdown_error_log is "
             . "only checked together with --- shutdown_error_log\n"
            if defined $block->no_shutdown_error_log;
        return;
    }

    # With TEST_NGINX_NO_CLEAN nginx is not stopped: nothing to look at.
    check_shutdown_error_log($block, $ENV{TEST_NGINX_NO_CLEAN}
                                     ? 'TEST_NGINX_NO_CLEAN' : undef);
}

sub check_shutdown_error_log ($$) {
    my ($block, $dry_run) = @_;
    my $name = $block->name;
    my $tb = Test::More->builder;

    my $pats = normalize_patterns($block->shutdown_error_log);
    my $no_pats = defined $block->no_shutdown_error_log
                  ? normalize_patterns($block->no_shutdown_error_log) : [];

    if ($dry_run) {
        $tb->skip("$name - shutdown_error_log - tests skipped due to "
                  . $dry_run) for @$pats, @$no_pats;
        return;
    }

    my $lines = error_log_data();

    my %found;
    for my $line (@$lines) {
        for my $pat (@$no_pats) {
            next unless ref $pat ? $line =~ /$pat/ : $line =~ /\Q$pat\E/;
            $found{$pat} = 1;
            Test::More::fail("$name - pattern \"" . fmt_str($pat)
                             . "\" should not match any line in error.log "
                             . "but matches line \"" . fmt_str($line) . "\"");
        }
    }
    for my $pat (@$no_pats) {
        next if $found{$pat};
        Test::More::pass("$name - pattern \"" . fmt_str($pat)
                         . "\" does not match a line in error.log");
    }

    for my $line (@$lines) {
        for my $pat (@$pats) {
            next unless defined $pat;
            if (ref $pat ? $line =~ /$pat/ : $line =~ /\Q$pat\E/) {
                Test::More::pass("$name - pattern \"$pat\" matches a line "
                                 . "in error.log");
                undef $pat;
            }
        }
    }
    for my $pat (@$pats) {
        next unless defined $pat;
        Test::More::fail("$name - pattern \"$pat\" should match a line in "
                         . "error.log");
    }
}

# ---------------------------------------------------------------------------
# Building requests
# ---------------------------------------------------------------------------

# --- more_headers text to "Name: value\r\n" lines; '#' lines are comments.
# Also reports whether the request body is chunked.
sub parse_more_headers ($) {
    my $in = shift;
    my ($out, $is_chunked) = ('', 0);
    for my $header (split /\n+/, $in) {
        next if $header =~ /^\s*\#/ || $header !~ /\S/;
        my ($key, $val) = split /:\s*/, $header, 2;
        $val = '' unless defined $val;
        $val =~ s/\r$//;
        $is_chunked = 1
            if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

# An eval'd more_headers array gives request $i its own element.
sub headers_for_request ($$$) {
    my ($name, $more_headers, $i) = @_;
    if (ref $more_headers eq 'ARRAY') {
        my $hdr = $more_headers->[$i];
        bail_out("$name - --- more_headers lacks data for request $i")
            unless defined $hdr;
        return parse_more_headers($hdr);
    }
    return parse_more_headers($more_headers);
}

# Split "METHOD [URI [HTTP/x.y]]\n<body>" and record how many bytes each
# piece takes in the original text (for apply_edits).
sub parse_request_line ($$) {
    my ($name, $text) = @_;

    my ($first, $content) = $text =~ /\A([^\n]*\n?)(.*)\z/s;
    bail_out("$name - Request line should be non-empty")
        if !defined $first || $first eq '';

    $first =~ /^(\s*)(\S+)( *)(?:(\S+)( *))?(?:(\S+)( *))?(\s*)$/
        or bail_out("$name - Request line is not valid. Should be 'meth "
                    . "[url [version]]' but got \"$first\".");

    my %r = (
        lead      => length $1,
        method    => $2,
        after_m   => length $3,
        url       => $4,
        after_u   => length($5 // ''),
        ver       => $6,
        tail      => length($7 // '') + length $8,
        content   => $content,
    );
    $r{url_len} = defined $r{url} ? length $r{url} : 0;
    $r{ver_len} = defined $r{ver} ? length $r{ver} : 0;
    $r{url} = '/'        unless defined $r{url};
    $r{ver} = 'HTTP/1.1' unless defined $r{ver};

    return \%r;
}

# Rewrite one request (a list of packets) the way upstream does: normalize
# the request line, insert Host/Connection/more_headers/Content-Length after
# it, and trim the body (when Content-Length is computed here).
sub build_request ($$$$$) {
    my ($name, $more_headers, $is_chunked, $conn, $packets) = @_;

    my $whole = join '', map { $_->{value} // '' } @$packets;
    my $r = parse_request_line($name, $whole);

    my $content = $r->{content};
    my $len_header = '';
    if (!$is_chunked && $content ne ''
        && $more_headers !~ /(?:^|\n)Content-Length:/)   # case as upstream
    {
        $content =~ s/^\s+|\s+$//gs;
        $len_header = "Content-Length: " . length($content) . "\r\n";
    }

    my $headers = '';
    $headers .= "Host: $ServerName\r\n"
        if $more_headers !~ /(?:^|\n)Host:/i;
    $headers .= "Connection: $conn\r\n"
        if $more_headers !~ /(?:^|\n)Connection/i;
    $headers .= "$more_headers$len_header\r\n";

    # [bytes of the original consumed, replacement text], in order.
    my @edits = (
        [ $r->{lead},    '' ],
        [ length $r->{method}, "$r->{method} " ],
        [ $r->{after_m}, '' ],
        [ $r->{url_len}, "$r->{url} " ],
        [ $r->{after_u}, '' ],
        [ $r->{ver_len}, "$r->{ver}\r\n" ],
        [ $r->{tail},    '' ],
        [ 0,             $headers ],
        [ length $r->{content}, $content ],
    );

    return apply_edits($packets, \@edits);
}

# Apply the edits to the concatenated packets while keeping the packet
# boundaries where the test put them: each packet receives the replacement
# text for the original bytes it held (the last packet of an edit takes any
# surplus; an insertion at a boundary joins the earlier packet).  Packets
# that end up empty are dropped.
sub apply_edits ($$) {
    my ($packets, $edits) = @_;

    my @ends;    # offset where each original packet ends
    my $off = 0;
    for my $p (@$packets) {
        $off += length($p->{value} // '');
        push @ends, $off;
    }

    my @out = ('') x @$packets;
    my $pos = 0;
    for my $edit (@$edits) {
        my ($len, $repl) = @$edit;

        if ($len == 0) {
            my $k = 0;
            $k++ while $k < $#ends && $ends[$k] < $pos;
            $out[$k] .= $repl;
            next;
        }

        my $end = $pos + $len;
        while ($pos < $end) {
            my $k = 0;
            $k++ while $k < $#ends && $ends[$k] <= $pos;
            if ($ends[$k] >= $end || $k == $#ends) {
                $out[$k] .= $repl;
                $pos = $end;
            } else {
                $out[$k] .= substr($repl, 0, $ends[$k] - $pos, '');
                $pos = $ends[$k];
            }
        }
    }

    return [ map { +{ %{ $packets->[$_] }, value => $out[$_] } }
             grep { length $out[$_] } 0 .. $#out ];
}

# The block's requests: a list of requests, each a list of packets
# ({value => bytes, delay_before => seconds}).
sub get_req_from_block ($) {
    my $block = shift;
    my $name = $block->name;

    my $raw = $block->raw_request;
    if (defined $raw) {
        return [ [ map { +{ value => $_ } } @$raw ] ] if ref $raw eq 'ARRAY';
        return [ [ { value => $raw } ] ];
    }

    my $more_headers = $block->more_headers;
    $more_headers = '' unless defined $more_headers;

    my $pipelined = $block->pipelined_requests;
    if ($pipelined) {
        bail_out("$name - invalid entries in --- pipelined_requests")
            if ref $pipelined ne 'ARRAY';

        my $buf = '';
        for my $i (0 .. $#$pipelined) {
            my ($hdr, $chunked) = headers_for_request($name, $more_headers, $i);
            my $conn = $i == $#$pipelined ? 'close' : 'keep-alive';
            my $pkts = build_request($name, $hdr, $chunked, $conn,
                                     [ { value => $pipelined->[$i] } ]);
            $buf .= join '', map { $_->{value} } @$pkts;
        }
        return [ [ { value => $buf } ] ];
    }

    my $request = $block->request;
    bail_out("$name - no --- request, --- raw_request or "
             . "--- pipelined_requests section")
        unless defined $request;

    if (!ref $request) {
        # Plain form: leading blank space and '#' comment lines are ignored.
        1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
        my ($hdr, $chunked) = headers_for_request($name, $more_headers, 0);
        return [ build_request($name, $hdr, $chunked, 'close',
                               [ { value => $request } ]) ];
    }

    bail_out("$name - invalid --- request: MUST be string or array of "
             . "requests")
        if ref $request ne 'ARRAY';

    my @reqs;
    for my $i (0 .. $#$request) {
        my $one = $request->[$i];
        my ($hdr, $chunked) = headers_for_request($name, $more_headers, $i);

        my $packets;
        if (!ref $one) {
            $packets = [ { value => $one } ];
        } elsif (ref $one eq 'ARRAY') {
            # One request written in several packets (separate writes).
            $packets = [ map {
                !ref $_             ? +{ value => $_ }
                : ref $_ eq 'HASH'  ? +{ %$_ }
                : bail_out("$name - Invalid syntax. $_ should be a string "
                           . "or hash with value.")
            } @$one ];
        } else {
            bail_out("$name - Invalid syntax. $one should be a string or an "
                     . "array of packets.");
        }

        push @reqs, build_request($name, $hdr, $chunked, 'close', $packets);
    }

    return \@reqs;
}

# ---------------------------------------------------------------------------
# The HTTP client
# ---------------------------------------------------------------------------

sub connect_to_server ($) {
    my $timeout = shift;
    my $deadline = time + $timeout;
    while (1) {
        my $sock = IO::Socket::INET->new(
            PeerAddr => $ServerAddr,
            PeerPort => $ServerPortForClient,
            Proto    => 'tcp',
            Timeout  => $timeout,
        );
        return $sock if $sock;
        my $err = $!;
        return undef if time > $deadline || $err != ECONNREFUSED;
        sleep 0.05;
    }
}

# Send the packets over one connection and read until the server closes it,
# the socket errors, or nothing moves for $timeout seconds.
# Returns (raw response, error): error is undef or {kind, msg} where kind is
# 'connect', 'timeout' or 'empty' (closed without sending anything).
sub send_request ($$$$) {
    my ($packets, $middle_delay, $timeout, $block) = @_;
    my $name = $block->name;

    # A server that closes early must not kill us with SIGPIPE.
    local $SIG{PIPE} = 'IGNORE';

    my $sock = connect_to_server($timeout);
    if (!$sock) {
        return ('', { kind => 'connect',
                      msg  => "cannot connect to $ServerAddr:"
                              . "$ServerPortForClient: $!" });
    }
    $sock->blocking(0);

    my @queue = @$packets;
    my $wbuf = @queue ? shift(@queue)->{value} : undef;
    my $woff = 0;
    my $resp = '';
    my ($err, $eof);

    my $fileno = fileno $sock;

    while (!$eof) {
        my ($rin, $win) = ('', '');
        vec($rin, $fileno, 1) = 1;
        vec($win, $fileno, 1) = 1 if defined $wbuf;

        my $n = select(my $rout = $rin, my $wout = $win, undef, $timeout);
        if ($n < 0) {
            next if $! == EINTR;
            $err = { kind => 'timeout', msg => "select() failed: $!" };
            last;
        }
        if ($n == 0) {
            $err = { kind => 'timeout',
                     msg  => "client socket timed out after ${timeout}s" };
            last;
        }

        if (defined $wbuf && vec($wout, $fileno, 1)) {
            my $bytes = syswrite($sock, $wbuf, length($wbuf) - $woff, $woff);
            if (defined $bytes) {
                $woff += $bytes;
            } elsif ($! != EAGAIN && $! != EWOULDBLOCK) {
                # The server may well answer and close before reading all
                # of the request; keep reading the response.
                warn "$name - write failed: $!\n" if $Verbose;
                undef $wbuf;
            }

            if (defined $wbuf && $woff >= length $wbuf) {
                if (@queue) {
                    my $next = shift @queue;
                    my $delay = $next->{delay_before} // $middle_delay;
                    sleep $delay if $delay;
                    ($wbuf, $woff) = ($next->{value}, 0);
                } else {
                    undef $wbuf;
                    my $shutdown = $block->shutdown;
                    if (defined $shutdown) {
                        shutdown($sock, $shutdown =~ /^\s*$/ ? 1 : $shutdown);
                    }
                }
            }
        }

        if (vec($rout, $fileno, 1)) {
            while (1) {
                my $bytes = sysread($sock, my $buf, 16384);
                if (!defined $bytes) {
                    last if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                    warn "WARNING: $name - HTTP response read failure: $!\n"
                        if $resp eq '' || $Verbose;
                    $eof = 1;
                    last;
                }
                if ($bytes == 0) {
                    $eof = 1;
                    last;
                }
                $resp .= $buf;
            }
        }
    }

    close $sock;

    if (!$err && $resp eq '') {
        $err = { kind => 'empty',
                 msg  => 'connection closed by the server without a '
                         . 'response' };
    }

    return ($resp, $err);
}

# Parse one response from the front of $raw.  Returns ($res, $raw_headers,
# $left) where $res = {code, status_line, headers => [[name, value], ...],
# content} and $left is whatever follows a Content-Length/chunked body (the
# next pipelined response).
sub parse_response ($$$) {
    my ($name, $raw, $head_req) = @_;

    my $raw_headers = $raw =~ /\A(.*?\r\n)\r\n/s ? $1 : '';

    my %res = (headers => [], content => '');

    my ($head, $body);
    if ($raw =~ /\A(.*?)\r?\n\r?\n(.*)\z/s) {
        ($head, $body) = ($1, $2);
    } else {
        ($head, $body) = ($raw, '');
    }

    my @lines = split /\r?\n/, $head;
    my $status = shift(@lines) // '';
    if ($status =~ m{^HTTP/\d+(?:\.\d+)?\s+(\d+)(?:\s+(.*))?$}) {
        $res{code} = $1;
        $res{status_line} = $status;
    } else {
        # Not an HTTP response at all (HTTP/0.9 or garbage): all is body.
        $res{content} = $raw;
        return (\%res, $raw_headers, undef);
    }

    for my $line (@lines) {
        if ($line =~ /^[ \t]+(.*)/ && @{ $res{headers} }) {
            $res{headers}[-1][1] .= " $1";    # obsolete line folding
        } elsif ($line =~ /^([^:]+?)\s*:\s*(.*?)\s*$/) {
            push @{ $res{headers} }, [$1, $2];
        }
    }

    my $code = $res{code};
    if ($head_req || $code == 204 || $code == 304 || $code =~ /^1/) {
        # No body; anything after the header belongs to the next response.
        return (\%res, $raw_headers, length $body ? $body : undef);
    }

    my $enc = res_header(\%res, 'Transfer-Encoding');
    my $len = res_header(\%res, 'Content-Length');

    if (defined $enc && $enc =~ /\bchunked\b/i) {
        my ($decoded, $left, $error) = decode_chunked($name, $body);
        if (defined $error) {
            Test::More::fail("$name - $error");
            return (undef, $raw_headers, undef);
        }
        $res{content} = $decoded;
        return (\%res, $raw_headers, $left);
    }

    if (defined $len && $len =~ /^\d+$/) {
        if (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got " . length($body) . "\n";
            $res{content} = $body;
            return (\%res, $raw_headers, undef);
        }
        $res{content} = substr $body, 0, $len;
        my $left = substr $body, $len;
        return (\%res, $raw_headers, length $left ? $left : undef);
    }

    $res{content} = $body;
    return (\%res, $raw_headers, undef);
}

# Returns (decoded, leftover after the last chunk, error message).
sub decode_chunked ($$) {
    my ($name, $raw) = @_;
    my $decoded = '';
    pos($raw) = 0;

    while (1) {
        if ($raw =~ /\G0[ \t]*(?:;[^\r\n]*)?\r\n(?:[^\r\n]+\r\n)*\r\n/gc) {
            my $left = substr $raw, pos($raw);
            return ($decoded, length $left ? $left : undef, undef);
        }

        if ($raw =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*(?:;[^\r\n]*)?\r\n/gc) {
            my $size = hex $1;
            if (length($raw) - pos($raw) < $size) {
                return ($decoded, undef, "invalid chunked data received "
                                 . "(not enough octets for the data section)");
            }
            $decoded .= substr $raw, pos($raw), $size;
            pos($raw) += $size;
            return ($decoded, undef,
                    "invalid chunked data received (expected CRLF).")
                unless $raw =~ /\G\r\n/gc;
            next;
        }

        if ($raw =~ /\G(.+)/gcs) {
            return ($decoded, undef, "invalid chunked body received: "
                                     . show_str($1));
        }

        return ($decoded, undef, "no last chunk found - " . show_str($raw));
    }
}

# Case-insensitive header lookup; repeated headers are joined with ", ".
sub res_header ($$) {
    my ($res, $key) = @_;
    return undef unless $res;
    my @vals = map { $_->[1] } grep { lc $_->[0] eq lc $key }
               @{ $res->{headers} };
    return @vals ? join(', ', @vals) : undef;
}

# ---------------------------------------------------------------------------
# Response checks
# ---------------------------------------------------------------------------

# With several requests, expected values must be arrays (one per request).
sub get_indexed_value ($$$$) {
    my ($name, $value, $req_idx, $need_array) = @_;

    if ($need_array) {
        return $value->[$req_idx] if ref $value eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }

    if (ref $value eq 'ARRAY') {
        bail_out("$name - SHOULD NOT HAPPEN: idx != 0 and don't need array.")
            if $req_idx != 0;
        return $value->[0];
    }

    return $value;
}

sub check_error_code ($$$$$) {
    my ($block, $res, $req_idx, $need_array, $err) = @_;
    my $name = $block->name;
    my $desc = "$name - status code ok";
    my $code = $res && defined $res->{code} ? $res->{code} : '';

    # A request that never completed fails here, loudly (unless --- abort
    # says the client is expected to give up).
    if ($err && $err->{kind} ne 'empty' && !defined $block->abort) {
        Test::More::fail($desc);
        Test::More::diag("$name - request $req_idx failed: $err->{msg}\n"
                         . "status code seen: '$code'");
        return;
    }

    my $ok;
    if (defined $block->error_code_like) {
        my $val = get_indexed_value($name, $block->error_code_like, $req_idx,
                                    $need_array);
        $ok = Test::More::like($code, qr/$val/sm, $desc);
    } elsif (defined $block->error_code) {
        my $val = get_indexed_value($name, $block->error_code, $req_idx,
                                    $need_array);
        $ok = Test::More::is($code, $val, $desc);
    } else {
        $ok = Test::More::is($code, 200, $desc);
    }

    Test::More::diag("$name - request $req_idx: $err->{msg}")
        if !$ok && $err;
}

sub check_raw_response_headers ($$$$) {
    my ($block, $raw_headers, $req_idx, $need_array) = @_;
    my $name = $block->name;
    $raw_headers = '' unless defined $raw_headers;

    if (defined $block->raw_response_headers_like) {
        my $pat = get_indexed_value($name, $block->raw_response_headers_like,
                                    $req_idx, $need_array);
        Test::More::like($raw_headers, qr/$pat/s,
                         "$name - raw resp headers like");
    }

    if (defined $block->raw_response_headers_unlike) {
        my $pat = get_indexed_value($name,
                                    $block->raw_response_headers_unlike,
                                    $req_idx, $need_array);
        Test::More::unlike($raw_headers, qr/$pat/s,
                           "$name - raw resp headers unlike");
    }
}

# "Name: value" lines and "!Name" (must be absent; value undef).  Returns
# the names in order plus a name => value map (a repeated name counts once).
sub parse_headers ($) {
    my $s = shift;
    my (@order, %h);
    for my $line (split /\n/, $s) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        my ($key, $val);
        if ($line =~ s/^!\s*//) {
            $key = $line;
        } else {
            ($key, $val) = split /\s*:\s*/, $line, 2;
        }
        push @order, $key unless exists $h{$key};
        $h{$key} = $val;
    }
    return (\@order, \%h);
}

sub check_response_headers ($$$$$) {
    my ($block, $res, $raw_headers, $req_idx, $need_array) = @_;
    my $name = $block->name;
    $raw_headers = '' unless defined $raw_headers;

    if (defined $block->response_headers) {
        my $spec = get_indexed_value($name, $block->response_headers,
                                     $req_idx, $need_array);
        $spec = expand_env_in_text($spec // '', $name, {});
        my ($order, $headers) = parse_headers($spec);

        for my $key (@$order) {
            my $val = $headers->{$key};
            if (!defined $val) {
                Test::More::unlike($raw_headers, qr/^\s*\Q$key\E\s*:/msi,
                    "$name - header $key not present in the raw headers");
                next;
            }

            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;

            my $actual = res_header($res, $key);
            Test::More::is(defined $actual ? $actual : '', $val,
                           "$name - header $key ok");
        }

    } elsif (defined $block->response_headers_like) {
        my $spec = get_indexed_value($name, $block->response_headers_like,
                                     $req_idx, $need_array);
        my ($order, $headers) = parse_headers($spec // '');

        for my $key (@$order) {
            my $val = $headers->{$key};
            $val = '' unless defined $val;
            my $actual = res_header($res, $key);
            Test::More::like(defined $actual ? $actual : '', qr/^$val$/,
                             "$name - header $key like ok");
        }
    }
}

# --- response_body_filters: uc lc ucfirst lcfirst length md5_hex sha1_hex,
# or code refs; [[...], [...]] gives one list per request.
sub transform_response_body ($$$) {
    my ($block, $res, $req_idx) = @_;
    return unless $res && defined $res->{content};

    my $filters = $block->response_body_filters;
    return unless defined $filters;

    my $name = $block->name;
    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//gs;
        $filters = [ split /\s+/, $filters ];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }

    if (ref $filters->[0] eq 'ARRAY') {
        $filters = $filters->[$req_idx];
        bail_out("$name - the --- response_body_filters two-dimensional "
                 . "array has no entry for request $req_idx")
            unless defined $filters;
    }

    my $content = $res->{content};
    for my $f (ref $filters eq 'ARRAY' ? @$filters : $filters) {
        $content = run_body_filter($name, $f, $content);
    }
    $res->{content} = $content;
}

sub run_body_filter ($$$) {
    my ($name, $filter, $content) = @_;

    return $filter->($content) if ref $filter eq 'CODE';

    my %builtin = (
        md5_hex  => sub { Digest::MD5::md5_hex($_[0]) },
        sha1_hex => sub { Digest::SHA::sha1_hex($_[0]) },
        uc       => sub { uc $_[0] },
        lc       => sub { lc $_[0] },
        ucfirst  => sub { ucfirst $_[0] },
        lcfirst  => sub { lcfirst $_[0] },
        length   => sub { length $_[0] },
    );

    if (!ref $filter && $builtin{$filter}) {
        return $builtin{$filter}->($content);
    }

    bail_out("$name - unknown filter, \"$filter\", specified in the "
             . "--- response_body_filters section");
}

sub check_response_body ($$$$$) {
    my ($block, $res, $req_idx, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;
    my $content = $res ? $res->{content} : undef;

    if (defined $block->response_body) {
        my $expected = get_indexed_value($name, $block->response_body,
                                         $req_idx, $need_array);

        if (defined $expected && !ref $expected) {
            $expected = expand_env_in_text($expected, $name, {});
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        }

        if (ref $expected) {
            Test::More::like($content, $expected,
                "$name - response_body - like (repeated req "
                . "$repeated_req_idx, req $req_idx)");
        } else {
            is_str($content, $expected,
                "$name - response_body - response is expected (repeated req "
                . "$repeated_req_idx, req $req_idx)");
        }

    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike)
    {
        my ($type, $patterns) = defined $block->response_body_like
            ? ('like', $block->response_body_like)
            : ('unlike', $block->response_body_unlike);

        my $pat = get_indexed_value($name, $patterns, $req_idx, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g unless ref $pat;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g
            unless ref $pat;

        my $summary = trim($content) // '';
        my $desc = "$name - response_body_$type - response is expected "
                   . "($summary)";
        if ($type eq 'like') {
            Test::More::like($content, qr/$pat/s, $desc);
        } else {
            Test::More::unlike($content, qr/$pat/s, $desc);
        }
    }

    # Extra per-response checks registered by helper modules; they run after
    # the status/header/body checks of this very response.
    for my $check (@ResponseBodyChecks) {
        $check->($block, $content, $req_idx, $repeated_req_idx, 0);
    }
}

# One round of a block: send every request, check every response, then the
# error log (between requests, and once more at the end).
sub run_test_helper ($$) {
    my ($block, $repeated_req_idx) = @_;
    my $name = $block->name;

    my $reqs = get_req_from_block($block);
    bail_out("$name - request empty") unless @$reqs;

    my $timeout = parse_time(scalar $block->timeout);
    $timeout = $Timeout unless defined $timeout && $timeout ne '';

    my $pipelined = $block->pipelined_requests;
    my $middle_delay = parse_time(scalar $block->raw_request_middle_delay);
    my $wait = parse_time(scalar $block->wait);

    my $req_idx = 0;
    for my $i (0 .. $#$reqs) {
        my $packets = $reqs->[$i];
        my $head_req = (join '', map { $_->{value} } @$packets)
                       =~ /^\s*HEAD\s+/ ? 1 : 0;

        my ($raw, $err) = send_request($packets, $middle_delay, $timeout,
                                       $block);

        # Pipelined responses all arrive on this one connection.
        my $n = $pipelined ? scalar @$pipelined : 0;
        my $need_array = $pipelined ? 1 : @$reqs > 1;

        while (1) {
            my ($res, $raw_headers, $left);
            if (!defined $block->ignore_response) {
                ($res, $raw_headers, $left) = parse_response($name, $raw // '',
                                                             $head_req);
            }

            if (!$n) {
                if (defined $left && length $left) {
                    warn "WARNING: $name - unexpected extra bytes after the "
                         . "response: " . show_str($left) . "\n";
                }
            } else {
                $raw = $left;
                $n--;
            }

            if (!defined $block->ignore_response) {
                check_error_code($block, $res, $req_idx, $need_array, $err);
                check_raw_response_headers($block, $raw_headers, $req_idx,
                                           $need_array);
                check_response_headers($block, $res, $raw_headers, $req_idx,
                                       $need_array);
                transform_response_body($block, $res, $req_idx);
                check_response_body($block, $res, $req_idx,
                                    $repeated_req_idx, $need_array);

            } elsif ($err && $err->{kind} ne 'empty'
                     && !defined $block->abort)
            {
                Test::More::fail("ERROR: $err->{msg} - $name");
            }

            if ($n || $req_idx < @$reqs - 1) {
                sleep $wait if $wait;
                check_error_log($block, $repeated_req_idx);
            }

            $req_idx++;
            last unless $n;
            $err = undef;
        }
    }

    sleep $wait if $wait;
    check_error_log($block, $repeated_req_idx);
}

1;
__END__

=encoding utf-8

=head1 NAME

Test::Nginx::Socket - compatible subset of openresty's Test::Nginx::Socket

=head1 SYNOPSIS

    use Test::Nginx::Socket 'no_plan';   # or: plan tests => ...

    repeat_each(2);
    no_shuffle();
    run_tests();

    __DATA__

    === TEST 1: sanity
    --- config
        location = /t { return 200 "hello\n"; }
    --- request
    GET /t
    --- response_body
    hello
    --- no_error_log
    [error]

Run with C<prove -I t/lib -r t>.  Do not put C<use lib 't/lib'> into the
.t files: without C<-I t/lib> the upstream Test::Nginx (if installed) is
used instead.

=head1 SUPPORTED

Exported functions: run_tests run_test repeat_each no_shuffle workers
worker_connections master_on master_off master_process_enabled log_level
no_root_location env_to_nginx server_port server_port_for_client
server_addr server_name server_root html_dir timeout add_block_preprocessor
add_response_body_check add_cleanup_handler check_accum_error_log
no_long_string bail_out config_preamble, plus everything Test::Base
exports (plan, blocks, is, like, ...).

Sections: main_config http_config config post_main_config server_name
request (plain and eval, arrays of requests, arrays of packets)
raw_request (plain and eval array) raw_request_middle_delay
pipelined_requests more_headers (plain and eval array per request)
error_code error_code_like response_headers (incl. !Name)
response_headers_like raw_response_headers_like raw_response_headers_unlike
response_body (string, eval qr//, eval array) response_body_like
response_body_unlike response_body_filters error_log no_error_log
grep_error_log grep_error_log_out timeout wait must_die suppress_stderr
shutdown_error_log no_shutdown_error_log user_files init log_level
ignore_response abort shutdown skip_nginx skip_eval ONLY SKIP LAST.

Environment: TEST_NGINX_BINARY TEST_NGINX_PORT TEST_NGINX_SERVER_PORT
TEST_NGINX_CLIENT_PORT TEST_NGINX_SERVROOT TEST_NGINX_NO_SHUFFLE
TEST_NGINX_LOG_LEVEL TEST_NGINX_TIMEOUT TEST_NGINX_LOAD_MODULES
TEST_NGINX_NO_CLEAN TEST_NGINX_MASTER_PROCESS TEST_NGINX_RANDOMIZE
TEST_NGINX_SLEEP TEST_NGINX_VERBOSE TEST_NGINX_ERROR_LOG
TEST_NGINX_CHECK_ACCUM_ERR_LOG.

=head1 NOT SUPPORTED

HTTP/2 and HTTP/3 (http2, http3, curl), valgrind/stap/HUP/check-leak/
benchmark modes, the embedded TCP/UDP servers (tcp_listen, udp_listen, ...),
access_log/no_access_log, stap*, todo/todo_nginx, skip_openssl, skip_slave,
charset, request_eval/response_body_eval (deprecated upstream),
TEST_NGINX_IGNORE_MISSING_DIRECTIVES and TEST_NGINX_USE_*.

=cut
