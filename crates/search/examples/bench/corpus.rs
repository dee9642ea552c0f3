//! A deterministic generator of realistic chat messages: several languages
//! (English, French, German, Spanish, Chinese, Japanese, Korean), Zipf-like
//! vocabularies, code identifiers, emoji, links, mentions and attachments,
//! over 100 channels in 10 communities and 1,000 authors. The same seed
//! gives the same corpus, so other engines (Postgres FTS, SQLite FTS5) can
//! load the identical messages from the TSV this writes.

use std::io::Write;

use hearth_search::{Has, IndexedMessage};
use hearth_types::{ChannelId, CommunityId, MessageId, RoleId, UserId};

pub const CHANNELS: i64 = 100;
pub const COMMUNITIES: i64 = 10;
pub const AUTHORS: i64 = 1_000;
/// Channel IDs are 1_000 + n, communities 500 + n / 10, users 10_000 + n.
pub fn channel(n: i64) -> ChannelId {
    ChannelId(1_000 + n)
}
pub fn author(n: i64) -> UserId {
    UserId(10_000 + n)
}

/// splitmix64: small, fast, good enough for a corpus.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Ranks drawn with probability ∝ 1 / rank^s.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for r in 1..=n {
            acc += 1.0 / (r as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

pub struct Vocabulary {
    pub words: Vec<String>,
    zipf: Zipf,
    /// Join words with spaces (false for Chinese and Japanese).
    spaced: bool,
}

impl Vocabulary {
    fn word<'a>(&'a self, rng: &mut Rng) -> &'a str {
        &self.words[self.zipf.sample(rng)]
    }
}

/// Common words first (they take the top ranks), then made-up words built
/// from the language's syllables for the long tail.
fn latin(common: &str, syllables: &[&str], size: usize, rng: &mut Rng) -> Vocabulary {
    let mut words: Vec<String> = common.split_whitespace().map(str::to_string).collect();
    let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
    while words.len() < size {
        let n = 2 + rng.below(3) as usize;
        let w: String = (0..n)
            .map(|_| syllables[rng.below(syllables.len() as u64) as usize])
            .collect();
        if seen.insert(w.clone()) {
            words.push(w);
        }
    }
    Vocabulary {
        words,
        zipf: Zipf::new(size, 1.07),
        spaced: true,
    }
}

fn cjk(common: &str, chars: &str, size: usize, spaced: bool, rng: &mut Rng) -> Vocabulary {
    let chars: Vec<char> = chars.chars().collect();
    let mut words: Vec<String> = common.split_whitespace().map(str::to_string).collect();
    let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
    while words.len() < size {
        let n = 1 + rng.below(3) as usize;
        let w: String = (0..n)
            .map(|_| chars[rng.below(chars.len() as u64) as usize])
            .collect();
        if seen.insert(w.clone()) {
            words.push(w);
        }
    }
    Vocabulary {
        words,
        zipf: Zipf::new(size, 1.0),
        spaced,
    }
}

pub struct Corpus {
    pub languages: Vec<(f64, Vocabulary)>,
    authors: Zipf,
    channels: Zipf,
    rng: Rng,
    next_ms: i64,
    seq: i64,
}

const EMOJI: &[&str] = &["🎉", "👍", "😂", "❤️", "🚀", "🔥", "👀", "🙏", "😅", "✅"];
const IDENTS: &[&str] = &[
    "parse_query_string",
    "getUserName",
    "HttpServerConfig",
    "max_retry_count",
    "onClickHandler",
    "useEffect",
    "tokio_runtime",
    "serde_json",
    "fetchMessages",
    "is_valid_utf8",
];

impl Corpus {
    pub fn new(seed: u64) -> Corpus {
        let mut rng = Rng::new(seed);
        let en = latin(
            "the to and a of is in it you that for this on with be have i are not we but was \
             can just so do at my if what about like will all they get from there one an out \
             up your know would think time good people how when make now some more also deploy \
             server meeting today tomorrow release build test fix issue game play music team \
             morning thanks please channel message review code bug update",
            &[
                "ka", "ro", "mi", "ten", "sol", "ver", "ling", "ar", "est", "on", "pre", "da",
                "ble", "tor", "is",
            ],
            50_000,
            &mut rng,
        );
        let fr = latin(
            "le la de et les des un une est pas que je en du pour il on qui ce dans ça mais \
             très bien café été déjà où être avec nous vous demain réunion équipe merci",
            &[
                "la", "re", "mon", "ti", "eau", "con", "é", "ment", "vre", "ou", "che", "an",
            ],
            20_000,
            &mut rng,
        );
        let de = latin(
            "der die und das ist nicht ich es zu den mit ein sie auch auf für von wir über \
             größe straße schön morgen besprechung danke bitte müssen können",
            &[
                "ge", "ver", "ung", "sch", "ein", "ber", "lich", "keit", "ä", "ö", "ü", "en", "st",
            ],
            20_000,
            &mut rng,
        );
        let es = latin(
            "el la de que y en los se del las un por con no una su para es al lo como más pero \
             mañana reunión equipo gracias año niño también",
            &[
                "ca", "ción", "te", "lo", "ra", "mien", "do", "es", "pa", "ñ", "ri", "os",
            ],
            20_000,
            &mut rng,
        );
        let zh = cjk(
            "我们 今天 明天 东京 北京 会议 项目 问题 服务器 发布 测试 朋友 时间 工作 什么 没有 可以 知道 现在 已经",
            "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坏兴切店",
            40_000,
            false,
            &mut rng,
        );
        let ja = cjk(
            "今日 明日 東京 会議 プロジェクト サーバー リリース テスト ありがとう よろしく 新しい 問題 時間 仕事 友達",
            "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんアイウエオカキクケコサシスセソタチツテトナニヌネノ日本人大年中会社自事出見行生時分",
            20_000,
            false,
            &mut rng,
        );
        let ko = cjk(
            "오늘 내일 회의 서버 프로젝트 학교 친구 감사합니다 문제 시간 일 배포 테스트",
            "가나다라마바사아자차카타파하고노도로모보소오조초코토포호구누두루무부수우주추쿠투푸후기니디리미비시이지치키티피히한국어서울",
            20_000,
            true,
            &mut rng,
        );
        Corpus {
            languages: vec![
                (0.60, en),
                (0.10, fr),
                (0.08, de),
                (0.07, es),
                (0.07, zh),
                (0.05, ja),
                (0.03, ko),
            ],
            authors: Zipf::new(AUTHORS as usize, 0.8),
            channels: Zipf::new(CHANNELS as usize, 0.7),
            rng,
            // 2025-06-01T00:00:00Z.
            next_ms: 1_748_736_000_000,
            seq: 0,
        }
    }

    /// The word of `rank` in language `lang` (0 = English).
    pub fn word(&self, lang: usize, rank: usize) -> &str {
        &self.languages[lang].1.words[rank]
    }

    pub fn next_message(&mut self) -> IndexedMessage {
        let rng = &mut self.rng;
        self.next_ms += 1 + rng.below(60_000) as i64;
        self.seq = (self.seq + 1) & 0xFFF;
        let id = ((self.next_ms - hearth_types::EPOCH_MS) << 22) | self.seq;
        let ch = self.channels.sample(rng) as i64;
        let author_n = self.authors.sample(rng) as i64;
        let mut pick = rng.unit();
        let mut lang = 0;
        for (i, (p, _)) in self.languages.iter().enumerate() {
            if pick < *p {
                lang = i;
                break;
            }
            pick -= p;
        }
        let vocab = &self.languages[lang].1;
        let len = 2 + (rng.unit().powi(2) * 28.0) as usize;
        let mut content = String::new();
        let sep = if vocab.spaced { " " } else { "" };
        if lang == 0 && rng.chance(0.03) {
            content.push_str("good morning ");
        }
        for i in 0..len {
            if i > 0 {
                content.push_str(sep);
            }
            content.push_str(vocab.word(rng));
            if vocab.spaced && rng.chance(0.01) {
                content.push(' ');
                content.push_str(IDENTS[rng.below(IDENTS.len() as u64) as usize]);
            }
        }
        if rng.chance(0.10) {
            content.push(' ');
            content.push_str(EMOJI[rng.below(EMOJI.len() as u64) as usize]);
        }
        let mut mentions = Vec::new();
        if rng.chance(0.05) {
            let u = author(rng.below(AUTHORS as u64) as i64);
            content.push_str(&format!(" <@{}>", u.0));
            mentions.push(u);
        }
        if rng.chance(0.05) {
            content.push_str(&format!(" https://example.com/{}", rng.below(100_000)));
        }
        let attachment = match rng.below(100) {
            0..=2 => Some("image/png"),
            3 => Some("video/mp4"),
            4 => Some("application/pdf"),
            _ => None,
        };
        let has = Has::detect(&content, attachment.map(|t| (Some(t), None)), false);
        IndexedMessage {
            id: MessageId(id),
            channel_id: channel(ch),
            community_id: Some(CommunityId(500 + ch / (CHANNELS / COMMUNITIES))),
            author_id: author(author_n),
            content,
            mentions,
            role_mentions: Vec::<RoleId>::new(),
            mentions_everyone: false,
            has,
            pinned: rng.chance(0.001),
            reply_to: None,
            created_at_ms: self.next_ms,
            edited_at_ms: None,
        }
    }
}

/// Writes messages as TSV: id, channel_id, community_id, author_id,
/// created_at_ms, content (tabs and newlines never occur in content).
pub fn write_tsv_row(out: &mut impl Write, m: &IndexedMessage) -> std::io::Result<()> {
    writeln!(
        out,
        "{}\t{}\t{}\t{}\t{}\t{}",
        m.id.0,
        m.channel_id.0,
        m.community_id.map_or(0, |c| c.0),
        m.author_id.0,
        m.created_at_ms,
        m.content
    )
}
