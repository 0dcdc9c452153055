# The Debian packages on this machine: apt-get install of the two .debs made
# by `./build.sh deb`, nginx loading the module through the snippet dh_nginx
# enabled, mdm-worker started from its systemd unit's own command line, a
# check-in and a push through them, then a clean purge.
#
# Changes the machine (installs and purges packages): runs only as root with
# MDM_TEST_DEB=DIR (the directory holding the .debs); `./build.sh test` does
# that after building them.

BEGIN {
    # the module comes from the package's snippet, not from the build tree
    $ENV{TEST_NGINX_LOAD_MODULES} = '';
}

use Test::Nginx::Socket;
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use MIME::Base64 qw(encode_base64);

our $Debs = $ENV{MDM_TEST_DEB};
if (!$Debs || $> != 0) {
    Test::More::plan(skip_all => 'set MDM_TEST_DEB=DIR and run as root (./build.sh test does)');
}

no_shuffle();
plan('no_plan');

our @Debs = map { glob "$Debs/$_\_*.deb" } qw(libnginx-mod-http-mdm ngx-mdm-worker);
die "no .debs in $Debs\n" unless @Debs == 2;

system('apt-get', 'install', '-y', '-qq', '--no-install-recommends', @Debs) == 0
    or die "apt-get install failed\n";

our $KEY = 'sekret';
our $AUTH = "Authorization: Basic " . encode_base64("nanomdm:$KEY", '');
our $CERT = make_push_cert();
our $APNS = start_apns();
our $W;
our $Snippet = '/etc/nginx/modules-enabled/50-mod-http-mdm.conf';

# the snippet's load_module, its relative path taken from Debian's nginx
# prefix (/usr/share/nginx, whose modules/ leads to /usr/lib/nginx/modules),
# since the test nginx runs with a prefix of its own
our $LoadModule = do {
    open my $fh, '<', $Snippet or die "$Snippet: $!\n";
    my ($path) = map { /^\s*load_module\s+(\S+);/ ? $1 : () } <$fh>;
    die "no load_module in $Snippet\n" unless $path;
    $path = "/usr/share/nginx/$path" unless $path =~ m{^/};
    "load_module $path;";
};

# the packaged unit's ExecStart, its credential directory made by hand
sub unit_worker () {
    open my $fh, '<', '/lib/systemd/system/mdm-worker.service' or die $!;
    my ($exec) = map { /^ExecStart=(.*)/ ? $1 : () } <$fh>;
    my $creds = File::Temp::tempdir(CLEANUP => 1);
    system('cp', '/etc/ngx_mdm/mdm-worker.conf', "$creds/mdm-worker.conf") == 0 or die;
    $exec =~ s/\$\{CREDENTIALS_DIRECTORY\}/$creds/g;
    my ($bin, $c, $file, @rest) = split ' ', $exec;
    Test::More::is($bin, '/usr/bin/mdm-worker', 'the unit runs the packaged binary');
    Test::More::ok($c eq '-c' && -f $file && !@rest, "with -c and its configuration: $exec");
    local $ENV{MDM_WORKER} = $bin;
    # the packaged file, with this test's Redis and APNs given as flags (they win)
    return start_worker(redis => "127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}",
                        apns_url => $APNS->{url}, apns_ca => $APNS->{server_ca},
                        repush_interval => 0, worker_id => 'deb', config => $file);
}

sub purge () {
    stop_worker($W) if $W;
    Test::More::is(system('apt-get', 'purge', '-y', '-qq', 'libnginx-mod-http-mdm',
                          'ngx-mdm-worker'), 0, 'apt-get purge');
    for my $f ('/usr/lib/nginx/modules/ngx_http_mdm_module.so', $Snippet,
               '/usr/bin/mdm-worker', '/etc/ngx_mdm/mdm-worker.conf',
               '/lib/systemd/system/mdm-worker.service') {
        Test::More::ok(!-e $f, "purged: $f");
    }
    Test::More::isnt(system("dpkg -s libnginx-mod-http-mdm ngx-mdm-worker >/dev/null 2>&1"),
                     0, 'dpkg knows neither package any more');
}

mdm_defaults(
    main_config => $LoadModule,
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => qq{
        location /v1/ { mdm_api; mdm_api_key $KEY; }
        location = /mdm/checkin {
            mdm_checkin;
            mdm_identity_ca \$TEST_NGINX_PKI/identity-ca.pem;
        }
    },
);

run_tests();

__DATA__

=== TEST 1: installed: the snippet is enabled and loads the packaged module; nginx serves the API
--- request
GET /v1/version
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    Test::More::ok(-l $::Snippet || -f $::Snippet, "dh_nginx enabled $::Snippet");
    my $conf = `cat $::Snippet`;
    Test::More::like($conf, qr{load_module\s+modules/ngx_http_mdm_module\.so;}, 'it loads the module');
    Test::More::is((stat '/etc/ngx_mdm/mdm-worker.conf')[2] & 07777, 0600, 'the worker configuration is 0600');
    # the system's own nginx.conf includes modules-enabled/*.conf
    my $t = `nginx -T 2>&1`;
    Test::More::is($?, 0, 'nginx -t with the system configuration loads it') or Test::More::diag($t);
    Test::More::like($t, qr{# configuration file \Q$::Snippet\E}, 'through the snippet');
} ]



=== TEST 2: the push certificate through the API
--- request eval
"PUT /v1/pushcert\n$::CERT->{pem}$::CERT->{key_pem}"
--- more_headers eval
$::AUTH
--- error_code: 200



=== TEST 3: a device enrolls through the packaged module
--- request eval
[ checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist", UDID => "DEB-1"),
  checkin_request("nanomdm/mdm/testdata/TokenUpdate.2.plist", UDID => "DEB-1", Topic => $::CERT->{topic}) ]
--- more_headers eval
"Content-Type: $t::MDM::CheckinType"
--- signed_by: deb
--- error_code eval
[ 200, 200 ]



=== TEST 4: a push through the packaged worker, started as its unit starts it
--- request
PUT /v1/push/DEB-1
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ sub {
    $::W = ::unit_worker();
    my @r = apns_wait($::APNS, 1, 20);
    Test::More::is(scalar @r, 1, 'APNs got the push') or Test::More::diag(worker_log($::W));
    Test::More::is($r[0]{status}, 200, 'and answered 200');
} ]



=== TEST 5: purged cleanly
--- request
GET /v1/version
--- more_headers eval
$::AUTH
--- error_code: 200
--- after_each eval
[ \&::purge ]
