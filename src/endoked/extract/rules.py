"""The ``rules`` extractor: offline, deterministic, English + Chinese (and mixed) colonoscopy reports.

Pipeline per report: normalise (length-preserving) -> sections (Findings / Impression / Pathology /
Indication / Plan ...) -> sentences -> vocabulary tokens (polyp, mass, location, size, morphology,
removal) -> ConText scopes (negation, uncertainty, history) -> polyp groups with their attributes ->
Findings and Impression merged so a polyp described in both is counted once -> pathology from the
pathology sections, the pathology field and "pathology showed ..." clauses.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from endoked.extract import context as cx
from endoked.extract import lexicon as lx
from endoked.extract.groups import Group, compatible, expand, is_landmark, morph_value, paris_morphology
from endoked.extract.quantities import find_count, has_each, parse_size, to_mm, zh_number
from endoked.extract.schema import PATHOLOGY_ORDER, ReportLabels, Span
from endoked.extract.text import detect_lang, normalize, split_sections, split_sentences
from endoked.extract.vocab import lower_ascii

FINDING_SECTIONS = frozenset({"body", "findings", "impression"})
_SEP_RE = re.compile(
    r"[,;]|(?<![A-Za-z])(?:and|while|whereas|plus|as\s+well\s+as)(?![A-Za-z])|另|以及|及|和|、", re.IGNORECASE
)
_APPOSITION_RE = re.compile(
    r"(?:likely|probably|consistent\s+with|compatible\s+with|suggestive\s+of|c/w|"
    r"resembling|i\.e\.|\s[-\u2013\u2014]\s|考虑|符合|疑为|呈)",  # "a protrusion ... - an inverted diverticulum"
    re.IGNORECASE,
)
_NON_POLYP_TUMOUR_RE = re.compile(r"lymphomas?|sarcomas?|metasta|淋巴瘤|肉瘤|转移", re.IGNORECASE)
_TYPICAL_RE = re.compile(r"(?:typical|characteristic|diagnostic)\s+of|in\s+keeping\s+with", re.IGNORECASE)
_RESEMBLES_RE = re.compile(
    r"(?:呈|类似|酷似)[^,;，；。]{0,16}$|(?:resembl\w*|mimick?\w*|simulat\w*|mistaken\s+for)\s+(?:an?\s+)?"
    r"(?:\d+(?:\.\d+)?\s*(?:mm|cm)\s+)?\S*\s*$",
    re.IGNORECASE,
)
# "the rectal "polyp" proved to be a prolapsing hemorrhoid", "息肉样隆起，活检证实为淋巴滤泡": what the mention
# turned out to be on a closer look.
_REVEALED_RE = re.compile(
    r"(?:prov(?:ed|en)|turn(?:ed|s)\s+out|(?:was|were|is|are)\s+(?:found|shown|confirmed|seen)|confirmed)\s+to\s+be|"
    r"(?:was|were|is|are)\s+(?:actually|in\s+fact|really|rather|instead|only|just|merely|simply)|"
    r"(?:actually|in\s+fact)\s+(?:was|were|is|are)|"
    r"(?:show(?:ed|s|ing)?|ha(?:d|s|ving))\s+(?:the\s+)?(?:typical|classic|characteristic)\s+(?:appearance|features?)\s+of|"
    r"实为|实际(?:上)?(?:为|是)|证实(?:为|是)|确认为|证明(?:为|是)|(?:冲洗|冲水|吸引|触碰|推之)后(?:证实)?(?:为|系|是)",
    re.IGNORECASE,
)
# "见一约1.0cm浅溃疡，周边黏膜充血、结节样隆起": the raised rim of another finding, and "局部黏膜呈结节样隆起": how
# the mucosa looks ("部分呈结节样隆起"), or a vein's bulge ("静脉团块状隆起"), not a lesion of its own
_RIM_RE = re.compile(r"(?:(?:周边|周围|边缘|四周)(?:黏膜|粘膜)?|(?:黏膜|粘膜|部分|局部|多处)呈|静脉)[^,;，；。]{0,10}$")
# "淋巴滤泡样小隆起", "lymphoid follicle-like elevations": an elevation named after a look-alike it resembles
_LIKE_MIMIC_RE = re.compile(r"\s*(?:样|状|-?like)\s*(?:小|大|扁平|的)?\s*$", re.IGNORECASE)
_UNSURE_SITE_RE = re.compile(
    r"(?:所在)?(?:肠段|部位)[^。;；\n]{0,8}?(?:难以|无法|不能|未能)(?:确定|判断|明确)[^)）。;；\n]*|"
    r"(?:segment|site|location)\s+(?:is\s+|was\s+)?(?:uncertain|unclear|indeterminate)[^.;)\n]*",
    re.IGNORECASE,
)
# "A third, …", "A couple more, …", "Two more …": a sentence that goes on counting the polyps just described
_CONTINUED_RE = re.compile(
    r"\s*(?P<head>(?:an?|the)\s+(?:second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|further|final|last)"
    r"(?:\s+one)?|(?P<more>a\s+couple|a\s+pair|two|three|four|five|six|\d)\s+(?:more|further|others?))(?=[\s,])"
    r"(?!\s+(?:look|opinion|inspection|view|pass|time|exam\w*|withdrawal|attempt|retroflexion|intubation|dose|"
    r"session|procedure|colonoscopy|biops\w*|injection|clip|snare|pieces?)(?![A-Za-z]))",
    re.IGNORECASE,
)
# a count field ("Polyp count: 1", "Number of polyps: 2", "息肉数目：1")
_COUNT_FIELD_RE = re.compile(
    r"(?:(?:polyps?|lesions?)\s*(?:count|number|total|detected|found|seen|identified|removed)|息肉(?:数目|数量|个数|总数))"
    r"\s*(?:[:：]|\.{2,})\s*(?:(?P<n>\d{1,2})(?![\d.])|(?P<many>[>＞]\s*\d+|(?:more|greater)\s+than\s+\w+|"
    r"multiple|several|numerous|many|innumerable|多发|多枚|数枚))",
    re.IGNORECASE,
)
_LATER_TOTAL_RE = re.compile(
    r"(?:共计?|合计|计)(?:钳除|切除|摘除|取出|送检|予以?切除)?\s*(?P<n>\d{1,2}|[一二两三四五六七八九十]{1,3})\s*枚"
)
_RESOLVED_RE = re.compile(
    r"\s*(?:(?:on|at|with|under)\s+[^,.;]{0,40}?,?\s+)?(?:it|this|the\s+(?:lesion|elevation|area|nodule|bump))\s+"
    r"(?:was|is|proved\s+to\s+be|turned\s+out\s+to\s+be|was\s+found\s+to\s+be|everted\s+(?:into|as))\s+",
    re.IGNORECASE,
)
_EMPHASIS_RE = re.compile(r"以[^,;，；。]{0,16}?为(?:著|主|多|甚|重|密集)")
# a line headed by a segment and a colon ("Sigmoid colon: …", "- 乙状结肠：…")
_LINE_HEAD_RE = re.compile(r"[ \t]*(?:[-*•·]\s*|\d{1,2}[.)、]\s*)?[^\n:：.。;；,，]{2,30}?[:：]")
_QUOTES = frozenset("\"'\u201c\u201d\u2018\u2019\u300c\u300d")
_NEW_MARK_RE = re.compile(
    r"another|second|third|fourth|fifth|sixth|seventh|additional|further|other|more|另", re.IGNORECASE
)
# "Three polyps were found in the transverse colon. The largest measured 12 mm …; the other two measured 3 mm and
# 4 mm": a sentence about some of the polyps just counted ("其中最大者", "余2枚")
_PART_RE = re.compile(
    r"(?:(?<![A-Za-z])the\s+(?:largest|biggest|smallest|larger|smaller|other\s+(?:one|two|three|four|five|\d)|"
    r"remaining(?:\s+(?:one|two|three|four|five|\d))?|rest)(?![A-Za-z])|其中(?:最|较)?[大小](?:者|的)|其余|余下?[\d一二两三四五]?枚)"
    r"(?:[^.;。；\n]|\.(?=\d))*$",
    re.IGNORECASE,
)
_DEFINITE_RE = re.compile(
    r"(?:(?<![A-Za-z])(?:the|this|that|these|those|both|all|said|above|same|its)\s+"
    r"(?:[\w.-]+\s+){0,3}|(?:该|此|上述|以上|这|所述|前述)[^,，。]{0,6})$",
    re.IGNORECASE,
)
_COUNT_TIMES_SIZE_RE = re.compile(r"(?P<n>[1-9])\s*[x×]\s*(?P<v>\d+(?:\.\d+)?)\s*(?P<u>mm|cm)", re.IGNORECASE)
_ONE_EACH_RE = re.compile(r"(?<![A-Za-z])(?:one|1)\s+each(?![A-Za-z])", re.IGNORECASE)
_AND_A_RE = re.compile(r"\s*(?:,|,?\s*and)\s+an?\s+", re.IGNORECASE)  # "a 5 mm and a 7 mm sessile polyp"
_PAREN_COUNT_RE = re.compile(r"[ \t]*[(（]\s*[1-9]\d?\s*[)）][ \t]*(?:[.;]|$)", re.MULTILINE)
_TIMES_RE = re.compile(r"\s*[x×]\s*(?P<n>\d{1,2})(?!\d|\.\d)", re.IGNORECASE)
_ZH_SEEN_RE = re.compile(r"见|发现|检出|有|示|多发|散在")
_ZH_TREATED_RE = re.compile(r"\s*(?:已|均)?(?:予|行|经|用|以)")
_PLURAL_DEF_RE = re.compile(r"(?<![A-Za-z])(?:these|those|both|all)(?![A-Za-z])|上述|以上", re.IGNORECASE)
_LESION_ADJ_RE = re.compile(
    r"(?:serrated|adenomatous|neoplastic|polypoid|raised|elevated|protruding)"
    r"(?:-appearing|-looking)?\s+(?:\w+\s+)?$|(?:腺瘤样|锯齿状|隆起性|隆起型)$",
    re.IGNORECASE,
)
_LIST_INTRO_RE = re.compile(
    r"[:：]\s*$|(?:see|listed|described|detailed|shown)\s+below|see\s+(?:the\s+)?(?:polyp\s+)?table|as\s+follows|如下|见下",
    re.IGNORECASE,
)
_ELLIPSIS_RE = re.compile(
    r"(?:[,;:]|(?<![A-Za-z])(?:and|plus))\s+(?P<n>one|two|three|four|five|six|seven|eight|nine|ten|another|"
    r"\d{1,2})\s+(?:more\s+|other\s+|further\s+)?(?:(?:at|in|on|near)\s+)(?:the\s+)?",
    re.IGNORECASE,
)
_COLON_RE = re.compile(r"[:：]")
# a list item that starts with a number and a segment ("Four polyps were removed: one in the caecum, two in the ...",
# "Three polyps: at the hepatic flexure 1.2 cm ...; mid transverse 0.5 cm; ...")
_COUNTED_SITE_RE = re.compile(
    r"\s*(?:(?:one|two|three|four|five|six|\d{1,2})\s+)?(?:in|at|from)\s+(?:the\s+)?$", re.IGNORECASE
)
_OPEN_BRACKET_RE = re.compile(r"\s*[(（]\s*")
# "同一肠段另见一枚约3mm息肉", "in the same segment, a second 3 mm polyp": the site of the polyp just described
_SAME_SITE_RE = re.compile(
    r"同一?(?:肠段|部位|节段|段|处)|(?:the\s+)?same\s+(?:segment|site|area|region|location)", re.IGNORECASE
)
# "直肠…见一枚…息肉，予切除。另见数枚约0.2cm小息肉": a sentence opening 另见 with no segment goes on where the last
# one was
_ANOTHER_SEEN_RE = re.compile(r"\s*(?:另|此外)(?:可)?见")
# "升结肠见2枚、横结肠见1枚、乙状结肠见3枚息肉": a count right after each segment, the polyp noun after the last
_LOC_COUNT_RE = re.compile(
    r"\s*(?:内|处)?\s*(?:可见|见|有|发现|检出)?\s*(?:约)?\s*(?P<n>\d{1,2}|[一二两三四五六七八九十]{1,3})\s*(?:枚|个(?!月)|颗|处)|"
    r"\s*[(（]\s*(?:[x×]\s*)?(?P<p>\d{1,2})\s*[)）]"  # "from the transverse colon (2) and the sigmoid (3)"
)
# telegraphic list items: "Sigmoid: 6 mm sessile - CSP; 3 mm - CFP" (the second item is a size and a removal only)
_ITEM_FILLER_RE = re.compile(r"[\s\-:,;()（）：，；]*")
# "直肠、乙状结肠黏膜充血水肿", "脾曲以远至乙状结肠黏膜…": segments named as the subject of a mucosal description, not
# a polyp's site
_MUCOSA_AFTER_RE = re.compile(
    r"(?:\s*(?:、|及|和|与|以远至|以近至|以远|以近|至|到)\s*[\u4e00-\u9fff]{0,6}?)*\s*(?:黏膜|粘膜)"
)
# Ablation treats vascular lesions and bleeding as well as polyps: it does not make a sized item a polyp.
_ABLATION_RE = re.compile(r"apc|argon|ablat|fulgur|电凝|氩|灼", re.IGNORECASE)
# What a size named before any polyp word may describe instead: a scar, a resection wound, an ulcer, a
# stricture, a tattoo or clip ("Sigmoid: 2 cm stricture", "EMR术后创面，约1.5cm").
_SITE = (
    r"(?<![A-Za-z])(?:scars?|ulcer(?:s|ation|ations)?|erosions?|wounds?|stricture|stenosis|narrowing|fissure|"
    r"fistula|abscess|tattoo(?:ed)?|ink|clips?|bleeding|blood|angulation)(?![A-Za-z])|"
    r"瘢痕|疤痕|创面|溃疡|糜烂|狭窄|瘘|肛裂|出血|渗血|墨|标记|钛夹"
)
_SITE_RE = re.compile(_SITE, re.IGNORECASE)
_SITE_AFTER_RE = re.compile(rf"\s*(?:[a-z-]+\s+){{0,2}}(?:{_SITE})", re.IGNORECASE)  # "2 cm stricture"
_ITEM_COUNT_RE = re.compile(
    rf"\s*[:：]?\s*(?:{lx.ZH_COUNT}|[(（]?\s*[x×]\s*\d)|\s*[:：]\s*[1-9]\s*[x×]\s*\d+(?:\.\d+)?\s*(?:mm|cm)(?=\s*(?:[.;,\n]|$))",
    re.IGNORECASE,
)
_ALL_RE = re.compile(r"均|都|皆|全部|(?<![A-Za-z])(?:all|both)(?![A-Za-z])", re.IGNORECASE)
_WHICH_SIZE_RE = re.compile(
    r"(?P<max>(?:较|最)?大(?:者|的|一枚|一个)|(?<![A-Za-z])(?:larger|largest|bigger|biggest)(?:\s+one)?)|"
    r"(?:较|最)?小(?:者|的|一枚|一个)|(?<![A-Za-z])(?:smaller|smallest)(?:\s+one)?",
    re.IGNORECASE,
)
_NORMAL_RE = re.compile(
    r"(?<![A-Za-z])(?:normal|unremarkable|clear|clean|healthy|intact)(?![A-Za-z])|正常|无异常|未见异常|光滑|清晰|通畅",
    re.IGNORECASE,
)
# The scope's route and landmarks ("Retroflexion in the rectum.", "Cecal landmarks photographed.", "退镜至直肠").
_ROUTE_RE = re.compile(
    r"photo\w*|landmarks?|retroflex\w*|withdr[ae]w\w*|insert\w*|intubat\w*|reached|advanced|"
    r"到达|进镜|退镜|插镜|反转|倒镜|拍照",
    re.IGNORECASE,
)
_PENDING_RE = re.compile(
    r"pending|await|to\s+follow|not\s+(?:yet\s+)?available|not\s+sent|待(?:回报|病理|报告|结果)|未回|待回|未送(?:检)?",
    re.IGNORECASE,
)
# A field of a form: "Location: [x] Sigmoid", "Number: 1", "部位：乙状结肠", "数目：2枚".
_FORM_FIELD_RE = re.compile(
    r"\s*(?P<field>location|site|number|count|size|morphology|removal|部位|数目|数量|大小|形态)\s*[:：]\s*"
    r"(?P<n>\d+|[一二两三四五六七八九十])?",
    re.IGNORECASE,
)
_REMOVAL_INTRO_RE = re.compile(r"[x×]\s*(?P<n>\d{1,2})\s*[:：]\s*", re.IGNORECASE)
_SIZE_WORDS_RE = re.compile(r"measur|size|diameter|(?<![A-Za-z])it(?:s)?(?![A-Za-z])|大小|直径|约|其", re.IGNORECASE)


@dataclass
class _SectionResult:
    groups: list[Group] = field(default_factory=list)
    hedged: list[Group] = field(default_factory=list)
    negated_spans: list[Span] = field(default_factory=list)
    malignancy_spans: list[Span] = field(default_factory=list)
    summary_counts: list[tuple[int, Span]] = field(default_factory=list)
    summary_groups: list[Group] = field(default_factory=list)
    # (start, end, fallback): a result after a cue; fallback when the cue opens a line ("Biopsy: scar tissue")
    pathology_segments: list[tuple[int, int, bool]] = field(default_factory=list)
    list_open: bool = False  # a list introduction ("Five polyps were removed:") was seen: items follow
    removal_intro: tuple[int, Span] | None = None  # (sentence index, span) of "CSP x2:": the next items were removed
    # segments where a sentence names a look-alike and no polyp ("诊断：回肠末段淋巴滤泡增生")
    mimic_sites: set[str] = field(default_factory=set)

    def hedge(self, g: Group) -> None:
        """Move an asserted group to the hedged ones."""
        self.groups.remove(g)
        g.hedged = True
        self.hedged.append(g)


def _qualifies(text: str, tok: cx.Token, toks: list[cx.Token]) -> bool:
    """A generic "lesion"/"病变" counts as a polyp only next to a polyp morphology ("0-IIa lesion") or a
    polyp-type adjective ("serrated-appearing lesions", "adenomatous lesion"); a table's heading never does."""
    if tok.value == "heading":
        return False
    if tok.value != "lesion":
        return True
    if _LESION_ADJ_RE.search(text, max(0, tok.start - 25), tok.start):
        return True
    return any(t.cat == "MORPH" and tok.start - 40 <= t.start <= tok.end + 25 for t in toks)


def _is_mimic(text: str, tok: cx.Token, sent_toks: list[cx.Token], cut: int) -> bool:
    """A look-alike, not a polyp: a vague mention (elevation, lesion, "polypoid"/"息肉样" X) explained as
    a look-alike ("小结节样隆起，…，考虑淋巴滤泡增生", "a lesion consistent with a lipoma"), any mention
    that a look-alike just named is said to resemble ("憩室，内翻呈息肉样", "a fold mimicking a polyp"),
    any mention that proved to be a look-alike ("the polyp proved to be a hemorrhoid", "实为痔核"), or a
    so-called "polyp" in quotes with a look-alike named after it."""
    if cx.is_vague(tok):
        # nodules explained as a tumour that is never a polyp ("raised nodular lesions … typical of Kaposi sarcoma")
        for t in sent_toks:
            if t.cat != "MAL" or t.start < tok.end or not _NON_POLYP_TUMOUR_RE.match(text, t.start):
                continue
            lo = max(tok.end, t.start - 30)
            if _APPOSITION_RE.search(text, lo, t.start) or _TYPICAL_RE.search(text, lo, t.start):
                return True
    if not any(t.cat == "MIMIC" for t in sent_toks):
        return False
    if _RESEMBLES_RE.search(text, max(0, tok.start - 25), tok.start):
        before = [t for t in sent_toks if t.end <= tok.start and t.cat in ("MIMIC", "POLYP", "MAL")]
        if before and before[-1].cat == "MIMIC":  # the look-alike is the subject: nothing else in between
            return True
    nxt = next((t.start for t in sent_toks if t.cat in ("POLYP", "MAL") and t.start > tok.start), cut)
    mimic = next((t for t in sent_toks if t.cat == "MIMIC" and tok.end <= t.start < nxt), None)
    if mimic is not None and mimic.start - tok.end <= 140 and _REVEALED_RE.search(text, tok.end, mimic.start):
        # any mention that proved to be a look-alike ("the polyp proved to be a hemorrhoid"), also after a clause
        # on how ("a polypoid lesion which, on probing with closed forceps, everted and proved to be ...")
        return True
    quoted = tok.start > 0 and text[tok.start - 1] in _QUOTES and text[tok.end : tok.end + 1] in _QUOTES
    if mimic is not None and mimic.start - tok.end <= 60 and quoted:
        return True  # a so-called "polyp" and a look-alike named after it
    before = [t for t in sent_toks if t.cat == "MIMIC" and t.end <= tok.start]
    if quoted and before and tok.start - before[-1].end <= 60:
        return True  # ... or before it ("Transverse colon lipoma (the referred "polyp")")
    if not cx.is_vague(tok):
        return False
    for t in sent_toks:
        if t.cat == "MIMIC" and tok.end <= t.start < nxt:
            cue = _APPOSITION_RE.search(text, max(tok.end, t.start - 25), t.start)
            if cue is not None or _OPEN_BRACKET_RE.fullmatch(text, tok.end, t.start):
                return True  # "…, a 2 mm nodule - lymphoid", "小结节样隆起（淋巴滤泡增生）"
    return False


def _real_size(text: str, t: cx.Token) -> bool:
    return t.cat == "SIZE" and parse_size(text, t.start, t.end) is not None


def _implied_mentions(text: str, sent_toks: list[cx.Token], scopes: list[cx.Scope], list_open: bool) -> list[cx.Token]:
    """Telegraphic items with no polyp noun stand for polyps, when nothing else (mass, look-alike) is named
    and a size is stated (not a distance: "the scar at 7 cm from the AV is flat" is no polyp) that no
    scar, resection wound, ulcer or stricture named before or just after it owns ("EMR术后创面，约1.5cm",
    "2 cm stricture"):

    - a polyp morphology plus a size ("Asc: 1 sessile 5mm, cold snare", "- 盲肠：0.7cm，Paris 0-IIa");
    - a segment plus a size, in a list of polyps ("Five polyps were removed: (1) Cecum, 3 mm, cold snare"),
      or with a count or a removal of this exam ("升结肠1枚，约0.3cm", "Cecum, 3 mm, cold snare"; not
      "EMR术后创面，约1.5cm"): one polyp item per segment that has its own size.
    """
    if list_open and {t.cat for t in sent_toks} == {"LOC"} and len(sent_toks) == 1:
        # "Six polyps were removed, 2-6 mm:\n- Cecum (2)\n- Ascending colon (1)": a segment and how many, in a list
        loc = sent_toks[0]
        if loc.value != "unspecified" and _PAREN_COUNT_RE.match(text, loc.end):
            return [cx.Token("POLYP", "implied", loc.start, loc.end, loc.text)]
    # a cancer the sentence rules out names no mass ("no features of deep invasion")
    cats = {t.cat for t in sent_toks if t.cat != "MAL" or not cx.status_of(t, scopes).negated}
    if "SIZE" not in cats or not cats.isdisjoint(("POLYP", "MAL", "MIMIC")) or cats.isdisjoint(("MORPH", "LOC")):
        return []
    sizes = [t for t in sent_toks if _real_size(text, t)]
    if not sizes or _SITE_RE.search(text, sent_toks[0].start, sizes[0].start):
        return []
    if any(_SITE_AFTER_RE.match(text, t.end) for t in sizes):
        return []
    for t in sent_toks:
        if t.cat == "MORPH":
            return [cx.Token("POLYP", "implied", t.start, t.end, t.text)]
    locs = [t for t in sent_toks if t.cat == "LOC" and t.value != "unspecified" and not is_landmark(text, t)]
    if not locs:
        return []
    if not (
        list_open
        or any(
            t.cat == "REM" and t.value == "yes" and not _ABLATION_RE.match(t.text) and cx.status_of(t, scopes).current
            for t in sent_toks
        )
        or _ITEM_COUNT_RE.match(text, locs[0].end)
    ):
        return []
    if len(locs) == 1:
        return [cx.Token("POLYP", "implied", locs[0].start, locs[0].end, locs[0].text)]
    out = []
    for i, loc in enumerate(locs):
        nxt = locs[i + 1].start if i + 1 < len(locs) else sent_toks[-1].end
        if any(loc.end <= t.start < nxt for t in sizes):
            out.append(cx.Token("POLYP", "implied", loc.start, loc.end, loc.text))
    return out


def _intro_split(text: str, s: int, e: int, toks: list[cx.Token]) -> int | None:
    """Where a counted list introduction ends inside a sentence ("共见息肉3枚：升结肠1枚，…", "Polyps (3):
    cecum 4 mm, …", "Two polyps were found: a 6 mm polyp in the cecum and …"): after its colon, when a
    segment name starts the list or polyps are named after it; None otherwise."""
    for m in _COLON_RE.finditer(text, s, e):
        c = m.end()
        before = [t for t in toks if s <= t.start < m.start()]
        after = [t for t in toks if c <= t.start < e]
        if not after:
            continue
        if not any(t.cat == "POLYP" for t in after) and (
            after[0].cat != "LOC" or (after[0].start - c > 6 and not _COUNTED_SITE_RE.match(text, c, after[0].start))
        ):
            continue
        polyp = [t for t in before if t.cat == "POLYP"]
        sizes = [(t.start, t.end) for t in before if t.cat in ("SIZE", "MORPH")]
        n = find_count(text, s, polyp[-1].start, polyp[-1].end, m.start(), sizes) if polyp else None
        if n is not None and n.value != 1:  # "a 6 mm lesion: polyp vs prolapse change" introduces no list
            return c
        if before and all(t.cat == "REM" for t in before) and _REMOVAL_INTRO_RE.search(text, s, m.end()):
            return c  # "CSP x2: 5mm SSL AC, 4mm HP RS."
    return None


def _removal_intro(text: str, s: int, e: int, sent_toks: list[cx.Token], res: _SectionResult, si: int) -> bool:
    """A count of resections that introduces the list of what was removed ("CSP x2:"): the number of the
    polyps that follow, all removed. True when the span was one."""
    m = _REMOVAL_INTRO_RE.search(text, s, e)
    if m is None or not sent_toks or any(t.cat != "REM" for t in sent_toks) or text[m.end() : e].strip():
        return False
    res.summary_counts.append((int(m.group("n")), Span(m.start("n"), m.end("n"))))
    res.list_open = True
    rem = sent_toks[-1]
    if rem.value == "yes":
        res.removal_intro = (si, Span(rem.start, rem.end))
    return True


def _elliptical_mentions(
    text: str, sent_toks: list[cx.Token], after: int, cut: int, scopes: list[cx.Scope]
) -> list[tuple[cx.Token, cx.Status]]:
    """Numbers standing for a polyp noun left out ("two polyps at the hepatic flexure and one at the
    splenic flexure"): a number after a separator, followed by a location phrase, after a polyp mention."""
    out: list[tuple[cx.Token, cx.Status]] = []
    for m in _ELLIPSIS_RE.finditer(text, after, cut):
        loc = next((t for t in sent_toks if t.start >= m.end()), None)
        if loc is None or loc.cat != "LOC" or loc.start - m.end() > 25:
            continue
        tok = cx.Token("POLYP", "ellipsis", m.start("n"), m.end("n"), text[m.start("n") : m.end("n")])
        st = cx.status_of(tok, scopes)
        if st.current:
            out.append((tok, st))
    return out


def _starts_within(span: Span, ranges: list[tuple[int, int]]) -> bool:
    return any(a <= span.start < b for a, b in ranges)


def _count_times_size(g: Group, m: re.Match[str], start: int) -> None:
    """Set ``g`` to ``n`` polyps of one size from a "n x v mm" match whose number starts at ``start``."""
    g.count, g.count_explicit = int(m.group("n")), True
    g.count_spans = [Span(start, start + len(m.group("n")))]
    g.sizes = [to_mm(float(m.group("v")), m.group("u"))]


def _build_group(
    text: str,
    mention: cx.Token,
    extra: list[cx.Token],
    win: tuple[int, int],
    sent_toks: list[cx.Token],
    st: cx.Status,
    section: str,
    scopes: list[cx.Scope],
) -> Group:
    ws, we = win
    g = Group(kind=mention.value, section=section, hedged=st.hedged)
    g.spans = [Span(mention.start, mention.end)] + [Span(t.start, t.end) for t in extra]
    sizes = [(t.start, t.end) for t in sent_toks if t.cat in ("SIZE", "MORPH")]
    cnt = find_count(text, ws, mention.start, mention.end, we, sizes)
    plural = mention.text.lower().endswith("s") and mention.value not in ("polyposis", "implied", "ellipsis")
    if mention.value == "polyposis":
        g.count = None
    elif mention.value == "ellipsis":
        word = mention.text.lower()
        g.count = int(word) if word.isdigit() else lx.EN_NUMBERS.get(word, 1)
        g.count_explicit, g.count_spans = True, [Span(mention.start, mention.end)]
    elif cnt is not None:
        g.count, g.count_explicit = cnt.value, True
        g.count_spans = [Span(cnt.start, cnt.end)]
    else:
        g.count = None if plural else 1
    if g.count is None and mention.value != "polyposis":
        # "直肠散在数枚小息肉，…，逐一予活检钳钳除，共4枚": the number given later in the sentence for the group
        later = _LATER_TOTAL_RE.search(text, mention.end, we)
        if later is not None:
            g.count, g.count_explicit = zh_number(later.group("n")), True
            g.count_spans = [Span(later.start(), later.end())]
    g.plural = plural
    g.each = has_each(text, ws, we)
    if g.each and _ONE_EACH_RE.search(text, ws, we):
        if g.count is None:
            g.count = 1  # "4 mm polyps in the splenic flexure and descending colon (one each)"
        elif g.count_explicit and g.count > 1:
            g.each = False  # "Two polyps, one each in the caecum and the descending colon": the count is the total
    intro: bool | None = None  # a list introduction ("Polyps (7):", "(see below)"), looked up when needed
    if g.count_explicit and g.count is not None:
        intro = _LIST_INTRO_RE.search(text, ws, we) is not None
        g.summary = intro or cx.TOTAL_RE.search(text, ws, we) is not None
    win_toks = [t for t in sent_toks if ws <= t.start < we]
    said_of_all = _ALL_RE.search(text, ws, we) is not None  # "均为广基", "both removed" (checked per token below)
    for t in win_toks:
        if t.cat == "LOC":
            g.locations.append(
                (t.value, Span(t.start, t.end), abs(t.start - mention.start) + (1000 if is_landmark(text, t) else 0))
            )
        elif t.cat == "SIZE":
            sz = parse_size(text, t.start, t.end)
            if sz is not None:
                g.sizes.extend(sz.values)
                g.size_spans.append(Span(t.start, t.end))
        elif t.cat == "MORPH" and g.morph is None and not cx.status_of(t, scopes).negated:
            value = morph_value(t)
            if value != "unspecified":
                g.morph, g.morph_spans = value, [Span(t.start, t.end)]
                if g.count != 1 or g.each:
                    g.morph_of = _morph_owner(text, t, win_toks, scopes)
                if said_of_all and _ALL_RE.search(text, max(ws, t.start - 8), t.start):
                    g.shared.add("morph")
        elif t.cat == "REM":
            negated = cx.status_of(t, scopes).negated
            g.set_removed(t.value == "yes" and not negated, Span(t.start, t.end))
            if said_of_all and _ALL_RE.search(text, max(ws, t.start - 12), t.start):
                g.shared.add("removed")
    if not g.locations:  # "a 5 mm polyp and a 7 mm polyp in the sigmoid": borrow the nearest location
        locs = [t for t in sent_toks if t.cat == "LOC"]
        if locs:
            t = min(locs, key=lambda t: abs(t.start - mention.start))
            g.locations.append((t.value, Span(t.start, t.end), 0))
    g.locations = [x for x in g.locations if x[2] < 1000] or g.locations
    # segments whose mucosa a clause describes give way to the polyp's own ("直肠、乙状结肠黏膜充血水肿，降结肠
    # 及乙状结肠见多发炎性假息肉"; not when no other segment is named)
    own = [x for x in g.locations if not _MUCOSA_AFTER_RE.match(text, x[1].end) or mention.start < x[1].start]
    g.locations = own or g.locations
    # segments offered when the site is unsure ("因肠袢影响，所在肠段难以确定，乙状结肠或降结肠") are no sites
    unsure = [m.span() for m in _UNSURE_SITE_RE.finditer(text, ws, we)]
    g.locations = [x for x in g.locations if not _starts_within(x[1], unsure)]
    # segments a group over the whole colon is only densest in are no sites of its own ("全结肠散在多发息肉，…，以乙状
    # 结肠及直肠为著": one entry over the whole colon)
    emphasis = [m.span() for m in _EMPHASIS_RE.finditer(text, ws, we)]
    if any(x[0] == "unspecified" and not _starts_within(x[1], emphasis) for x in g.locations):
        g.locations = [x for x in g.locations if not _starts_within(x[1], emphasis)]
    # A named segment beats a generic "colonic"/"全结肠" in the same window ("on the colonic side of the
    # anastomosis", "全结肠黏膜粗糙，横结肠见散在炎性息肉").
    g.locations = [x for x in g.locations if x[0] != "unspecified"] or g.locations
    if not g.locations and not g.sizes and (intro or (intro is None and _LIST_INTRO_RE.search(text, ws, we))):
        g.summary = True  # "Polyps as follows:", "Multiple polyps:" introduce the items that follow
    per_loc = []
    for t in win_toks:
        m = _LOC_COUNT_RE.match(text, t.end) if t.cat == "LOC" else None
        if m is not None and m.group("n") and t.end > mention.start:  # "…见3枚息肉": counts come before the noun
            m = None
        n = zh_number(m.group("n") or m.group("p")) if m is not None else None
        if n:
            per_loc.append((t.value, Span(t.start, t.end), n))
    if len(per_loc) > 1 and not g.each:
        g.location_counts = per_loc
        g.count, g.count_explicit = sum(n for _, _, n in per_loc), True
    if (
        g.each
        and g.count is not None
        and len(g.sizes) > 1
        and len(set(g.location_values())) <= 1
        and (g.count == 1 or "各" in text[ws:we])  # not "Two polyps, 1.5cm and 1.0cm, each snared"
    ):
        g.count, g.each = g.count * len(g.sizes), False  # "0.3cm、0.5cm息肉各1枚": one per listed size
    if g.count is None and plural and not g.count_explicit and len(g.sizes) > 1:
        g.count = len(g.sizes)  # "6 mm and 4 mm sessile polyps"
    if g.count == 1 and not plural and len(g.size_spans) > 1 and g.size_spans[-1].end <= mention.start:
        # "a 5 mm and a 7 mm sessile polyp": one noun after sizes each with its own article is one polyp per size
        pairs = zip(g.size_spans, g.size_spans[1:], strict=False)
        if all(_AND_A_RE.fullmatch(text, a.end, b.start) for a, b in pairs):
            g.count = len(g.size_spans)
    if g.count is None and plural and not g.count_explicit and len(g.size_spans) == 1:
        # "2 x 3mm sessile polyps": a number without a unit times a size, before a plural noun, is how many
        m = _COUNT_TIMES_SIZE_RE.fullmatch(text, g.size_spans[0].start, g.size_spans[0].end)
        if m is not None and int(m.group("n")) > 1 and g.size_spans[0].end <= mention.start:
            _count_times_size(g, m, g.size_spans[0].start)
    if mention.value == "implied" and len(g.size_spans) == 1:
        # a per-segment item "Ascending: 2 x 6 mm", "Sigmoid: 1 x 4 mm": a number of polyps times one size, when the
        # number is the smaller (the two dimensions "5 x 4 mm" name the larger first: one polyp)
        item = g.size_spans[0]
        m = _COUNT_TIMES_SIZE_RE.fullmatch(text, item.start, item.end)
        if m is not None and (not g.count_explicit or any(c.end > item.start for c in g.count_spans)):
            if int(m.group("n")) < float(m.group("v")):
                _count_times_size(g, m, item.start)
            else:
                g.count, g.count_explicit, g.count_spans = 1, False, []
    return g


def _morph_owner(text: str, t: cx.Token, win_toks: list[cx.Token], scopes: list[cx.Scope]) -> str | None:
    """Which of several polyps described together a morphology belongs to (see ``Group.morph_of``): the
    larger or smaller one when it says so ("大者有蒂"), else the segment it follows when the window names
    several ("the cecum (5 mm), transverse colon (8 mm, pedunculated) and sigmoid colon (3 mm)"); None when
    it is said of all ("均为广基", "all sessile") or comes before or after every segment."""
    before = text[max(0, t.start - 14) : t.start]
    if _ALL_RE.search(before[-8:]):
        return None
    found = list(_WHICH_SIZE_RE.finditer(before))
    if found:  # the nearest: "小者冷圈套切除，大者有蒂"
        which = found[-1]
        return "max" if which.group("max") else "min"
    locs = [
        x
        for x in win_toks
        if x.cat == "LOC"
        and x.value != "unspecified"
        and not cx.status_of(x, scopes).negated
        and not is_landmark(text, x)
    ]
    if len({x.value for x in locs}) < 2:
        return None
    prior = [x for x in locs if x.end <= t.start]
    if not prior:
        return None
    owner = prior[-1]
    if any(x.start > t.start for x in locs):
        return owner.value
    # after the last segment: its own only inside a parenthesis opened after it
    return owner.value if text.rfind("(", owner.end, t.start) > text.rfind(")", owner.end, t.start) else None


def _could_be_at(sites: list[str], other: Group) -> bool:
    """Whether a description naming the segments ``sites`` (none: any) can be of ``other``'s polyps."""
    return not sites or any(compatible(a, b) for a in sites for b in other.location_values() or ["unspecified"])


def _named_site(g: Group) -> list[tuple[str, Span, int]]:
    """The group's first named segment (not "unspecified"), as a location entry for another group; [] if none."""
    return [x for x in g.locations if x[0] != "unspecified"][:1]


def _share(groups: list[Group]) -> None:
    """Attributes said of all polyps of a sentence ("…，均为广基，均予冷圈套切除") go to each of them."""
    for g in groups:
        for other in groups:
            if other is g:
                continue
            if "morph" in g.shared and other.morph is None and g.morph is not None:
                other.morph, other.morph_spans = g.morph, list(g.morph_spans)
            if "removed" in g.shared and g.removed is not None and g.removed_spans:
                other.set_removed(g.removed, g.removed_spans[0])


def _has_parts(g: Group) -> bool:
    """A group counted explicitly as more than one polyp: later sentences may describe some of them ("the largest
    …", "the other two …"), adding sizes, not polyps."""
    return g.count_explicit and (g.count or 0) > 1


def _refers_back(text: str, g: Group, mention: cx.Token, prev: list[Group]) -> list[Group]:
    """Earlier groups of the same section that this description restates (empty: a new polyp)."""
    if not prev:
        return []
    before = text[max(0, mention.start - 40) : mention.start]
    definite = _DEFINITE_RE.search(before) is not None
    if not definite and not g.sizes and not g.count_explicit and "\u4e00" <= mention.text[:1] <= "\u9fff":
        # "直肠息肉予活检钳钳除": a polyp named as the subject of a treatment, not seen (见/发现) in its clause,
        # is one described before
        clause = re.split(r"[。；;，,\n]", before)[-1]
        definite = _ZH_SEEN_RE.search(clause) is None and _ZH_TREATED_RE.match(text, mention.end) is not None
    m = _PART_RE.search(text, max(0, mention.start - 60), mention.end) if mention.value == "implied" else None
    if m is not None and _has_parts(prev[-1]) and all(m.start() <= c.start < m.end() for c in g.count_spans):
        return [prev[-1]]
    if _NEW_MARK_RE.search(text, max(0, mention.start - 25), mention.start):
        return []
    locs = [v for v in g.location_values() if v != "unspecified"]
    if g.count_explicit and not definite:
        known = [p.count for p in prev]
        if (
            not locs
            and not g.sizes
            and g.count is not None
            and None not in known
            and g.count <= sum(c or 0 for c in known)
        ):
            return list(prev)  # "IMP: 4 polyps, 3 removed" restates what was described
        if not locs and not g.sizes and None in known:
            # "Scattered pseudopolyps in the transverse colon ... Biopsies of two polyps.": a bare number
            # after polyps of undetermined number picks some of them out.
            return [p for p in prev if p.count is None][-1:]
        return []
    if not definite and (locs or g.sizes):
        return []
    if definite and _PLURAL_DEF_RE.search(before):
        return list(prev)
    for p in reversed(prev):
        if _could_be_at(locs, p):
            return [p]
    return []


_TABLE_ROW_RE = re.compile(r"^[ \t]*\|?(?:[^|\n]*\|){2,}[^|\n]*$", re.MULTILINE)
_SITE_HEAD_RE = re.compile(r"site|location|segment|部位|位置", re.IGNORECASE)
_SIZE_HEAD_RE = re.compile(r"size|diameter|大小|直径|尺寸", re.IGNORECASE)
_SHAPE_HEAD_RE = re.compile(r"paris|morpholog|shape|type|形态|分型", re.IGNORECASE)
# a column of how many polyps a row stands for ("部位 | 数量 | 大小"); "No." and "#" number the rows
_COUNT_HEAD_RE = re.compile(
    r"数量|个数|枚数|(?<![a-z])(?:count|qty|n|number\s+of\s+polyps|(?:no\.?|#)\s+of\s+polyps)(?![a-z])", re.IGNORECASE
)
_BARE_COUNT_RE = re.compile(r"\s*([1-9]\d?)\s*(?:枚|个)?\s*$")
_HEAD_UNIT_RE = re.compile(r"\b(mm|cm)\b|(毫米|厘米)", re.IGNORECASE)
_BARE_NUMBER_RE = re.compile(r"\s*(\d+(?:\.\d+)?)(?:\s*(?:-|to|~)\s*(\d+(?:\.\d+)?))?\s*$")
_TABLE_NONE_RE = re.compile(
    r"(?<![A-Za-z])(?:normal|none|nil|nad|no\s+polyps?|not\s+seen|absent)(?![A-Za-z])|未见|正常|无息肉", re.IGNORECASE
)
_BARE_PARIS_RE = re.compile(r"\s*(?:0\s*-\s*)?(I{1,2})\s*([abcps]{0,3})\s*$", re.IGNORECASE)


def _cells(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """The cells of the pipe-table row ``text[a:b]`` as spans (the empty cells outside outer pipes dropped)."""
    out: list[tuple[int, int]] = []
    x = a
    for i in range(a, b + 1):
        if i == b or text[i] == "|":
            out.append((x, i))
            x = i + 1
    if out and not text[out[0][0] : out[0][1]].strip():
        out = out[1:]
    if out and not text[out[-1][0] : out[-1][1]].strip():
        out = out[:-1]
    return out


def _table_groups(text: str, orig: str, start: int, end: int, kind: str) -> tuple[list[Group], list[tuple[int, int]]]:
    """Polyps listed in a pipe table with a header row naming the site column ("# | Site | Size (mm) | Paris"):
    one group per data row whose site cell names a segment, its size read from the size cell (a bare number takes
    the header's unit) and its shape from a shape cell (Paris classes with or without "0-"). Returns the groups
    and the spans of the rows read, which the sentence rules then skip."""
    rows = [(m.start(), m.end()) for m in _TABLE_ROW_RE.finditer(text, start, end)]
    groups: list[Group] = []
    used: list[tuple[int, int]] = []
    i = 0
    while i < len(rows):
        hs, he = rows[i]
        head = [text[a:b] for a, b in _cells(text, hs, he)]
        site = next((k for k, c in enumerate(head) if _SITE_HEAD_RE.search(c)), None)
        if (
            site is None
            or any(t.cat == "LOC" for t in cx.scan(cx.FIND, text, orig, hs, he))
            or _SITE_CODE_RE.search(head[site]) is not None  # "#1 site 4 | …": a coded row, not a header
        ):
            i += 1
            continue
        size = next((k for k, c in enumerate(head) if _SIZE_HEAD_RE.search(c)), None)
        shape = next((k for k, c in enumerate(head) if _SHAPE_HEAD_RE.search(c)), None)
        number = next((k for k, c in enumerate(head) if _COUNT_HEAD_RE.search(c)), None)
        unit_m = _HEAD_UNIT_RE.search(head[size]) if size is not None else None
        unit = unit_m.group(0) if unit_m else "mm"
        used.append((hs, he))
        j = i + 1
        while j < len(rows) and (j == i + 1 or rows[j][0] <= text.find("\n", rows[j - 1][1]) + 1):
            rs, re_ = rows[j]
            cells = _cells(text, rs, re_)
            if set(text[rs:re_]) <= set("|-: \t"):  # a Markdown rule line
                used.append((rs, re_))
                j += 1
                continue
            if len(cells) <= site:
                break
            a, b = cells[site]
            row_toks = cx.scan(cx.FIND, text, orig, rs, re_)
            locs = [t for t in row_toks if t.cat == "LOC" and a <= t.start < b]
            used.append((rs, re_))
            j += 1
            if not locs:
                continue
            g = Group(kind="polyp", section=kind, hedged=False)
            g.spans = [Span(rs, re_)]
            g.locations = [(locs[0].value, Span(locs[0].start, locs[0].end), 0)]
            if number is not None and number < len(cells):
                n = _BARE_COUNT_RE.match(text, *cells[number])
                if n is not None:  # "横结肠 | 2 | 0.5cm、0.7cm": two polyps, each with its size when one is listed each
                    g.count, g.count_explicit = int(n.group(1)), True
                    g.count_spans = [Span(*cells[number])]
            if size is not None and size < len(cells):
                sa, sb = cells[size]
                parsed = [parse_size(text, t.start, t.end) for t in row_toks if t.cat == "SIZE" and sa <= t.start < sb]
                bare = _BARE_NUMBER_RE.match(text, sa, sb)
                if parsed and parsed[0] is not None:
                    values = list(parsed[0].values)
                    g.sizes = values if g.count is not None and len(values) == g.count > 1 else [max(values)]
                elif bare is not None:
                    g.sizes = [to_mm(float(bare.group(2) or bare.group(1)), unit)]
                if g.sizes:
                    g.size_spans = [Span(sa, sb)]
            morphs = [t for t in row_toks if t.cat == "MORPH"]
            if morphs:
                g.morph, g.morph_spans = morph_value(morphs[0]), [Span(morphs[0].start, morphs[0].end)]
            elif shape is not None and shape < len(cells):
                pm = _BARE_PARIS_RE.match(text, *cells[shape])
                if pm is not None:
                    g.morph, g.morph_spans = paris_morphology(pm.group(1), pm.group(2)), [Span(*cells[shape])]
            rem = [t for t in row_toks if t.cat == "REM"]
            if rem:
                g.set_removed(rem[0].value == "yes", Span(rem[0].start, rem[0].end))
            # a row says a polyp is there by a polyp word, or by a size or a shape beside no look-alike; "Rectum |
            # normal" and "Caecum | lipoma, not a polyp" say none is
            scopes = cx.scopes_for_sentence(text, rs, re_)
            named = any(t.cat == "POLYP" and cx.status_of(t, scopes).current for t in row_toks)
            negated = any(t.cat == "POLYP" and cx.status_of(t, scopes).negated for t in row_toks)
            mimic = any(t.cat == "MIMIC" for t in row_toks)
            polypish = named or (bool(g.sizes or g.morph) and not mimic and not negated)
            if polypish and not _TABLE_NONE_RE.search(text, rs, re_):
                groups.append(g)
        i = j
    return groups, used


_SITE_LEGEND_RE = re.compile(r"(?:site|location|segment)\s+codes?\s*[:：]\s*(?P<body>[^\n]+)")
_LEGEND_ITEM_RE = re.compile(r"(?P<code>\d{1,2})\s*=\s*(?P<name>[^=\n]+?)(?=\s+\d{1,2}\s*=|[;,]?\s*$)")
_SITE_CODE_RE = re.compile(r"(?<![a-z])site\s*(?:code\s*)?[:#=]?\s*(?P<code>\d{1,2})(?![\d.])")


@functools.lru_cache(maxsize=16)
def _site_legend(text: str, orig: str) -> tuple[dict[str, str], tuple[int, int]] | None:
    """A report's site-code legend ("Site codes: 1=caecum 2=ascending …"): code -> segment and the legend's span;
    parsed once per report, however many finding sections ask."""
    legend = _SITE_LEGEND_RE.search(text)
    if legend is None:
        return None
    codes: dict[str, str] = {}
    for m in _LEGEND_ITEM_RE.finditer(text, legend.start("body"), legend.end("body")):
        names = [t for t in cx.scan(cx.FIND, text, orig, m.start("name"), m.end("name")) if t.cat == "LOC"]
        if names:
            codes[m.group("code")] = names[0].value
    return (codes, (legend.start(), legend.end())) if codes else None


def _with_site_codes(text: str, orig: str, toks: list[cx.Token], start: int, end: int) -> list[cx.Token]:
    """A case report form's site codes read as segments: the legend ("Site codes: 1=caecum 2=ascending …") names no
    site of its own, and each "site 4" in the section is the segment the legend gives code 4."""
    found = _site_legend(text, orig)
    if found is None:
        return toks
    codes, (l0, l1) = found
    kept = [t for t in toks if not (t.cat == "LOC" and l0 <= t.start < l1)]
    for m in _SITE_CODE_RE.finditer(text, start, end):
        value = codes.get(m.group("code"))
        if value is not None and not l0 <= m.start() < l1:
            kept.append(cx.Token("LOC", value, m.start(), m.end(), text[m.start() : m.end()]))
    return sorted(kept, key=lambda t: (t.start, t.end))


def _finding_section(text: str, orig: str, start: int, end: int, kind: str, res: _SectionResult) -> None:
    toks = _with_site_codes(text, orig, cx.scan(cx.FIND, text, orig, start, end), start, end)
    ti = 0
    last_group_sentence = -2
    scene: tuple[int, cx.Token] | None = None  # (sentence index, segment) of a sentence that only names one
    spans: list[tuple[int, int]] = []
    intro_ends: set[int] = set()  # where a counted list introduction ends (its items follow)
    for s, e in split_sentences(text, start, end, orig):
        split = _intro_split(text, s, e, toks) if _COLON_RE.search(text, s, e) else None
        spans.extend([(s, split), (split, e)] if split is not None else [(s, e)])
        if split is not None:
            intro_ends.add(split)
    line_site: tuple[int, cx.Token] | None = None  # (line end, segment) of a line headed "Sigmoid colon: …"
    last_built: list[Group] = []  # the groups the last sentence with polyps built
    path_until = -1  # a result introduced by "…:" runs to the end of its line ("Histology has now returned: …; …")
    table, table_rows = _table_groups(text, orig, start, end, kind) if "|" in text[start:end] else ([], [])
    res.groups.extend(table)
    for si, (s, e) in enumerate(spans):
        while ti < len(toks) and toks[ti].start < s:
            ti += 1
        if s < path_until or any(a <= s < b or (s < a and e > a) for a, b in table_rows):
            continue
        sent_toks = []
        tj = ti
        while tj < len(toks) and toks[tj].start < e:
            sent_toks.append(toks[tj])
            tj += 1
        cue = cx.PATH_CUE_RE.search(text, s, e)
        if not sent_toks and cue is None:
            if _follow_up(text, s, [], [], res, si, last_group_sentence):
                last_group_sentence = si  # "Number: 1"
            continue
        cut = e
        if cue is not None:
            cut = cue.start()
            # pathology of an earlier exam quoted in today's note ("2022年…切除横结肠息肉（病理：…）") is history
            if not any(sc.kind == "hist" and sc.start <= cut < sc.end for sc in cx.scopes_for_sentence(text, s, e)):
                line_start = not text[text.rfind("\n", 0, cut) + 1 : cut].strip()
                stop = e
                opens = text[cue.end() - 1] in ":：" or text[cue.end() : cue.end() + 3].lstrip()[:1] in (":", "：")
                # "Pathology returned. A. Cecum polyp: tubular adenoma. …": a cue that ends its sentence opens the line
                if opens or not text[cue.end() : e].strip(" .。"):
                    nl = text.find("\n", cue.end(), end)
                    stop = path_until = max(e, end if nl < 0 else nl)
                res.pathology_segments.append((cue.end(), stop, line_start))
            sent_toks = [t for t in sent_toks if t.start < cut]
        if _removal_intro(text, s, cut, sent_toks, res, si):
            continue
        scopes = cx.scopes_for_sentence(text, s, cut)
        line_begin = text.rfind("\n", 0, s) + 1
        head = _LINE_HEAD_RE.match(text, line_begin) if not text[line_begin:s].strip() else None
        if (
            head is not None
            and sent_toks
            and sent_toks[0].cat == "LOC"
            and text[sent_toks[0].end : head.end()].strip() in (":", "：")  # not "乙状结肠镜检查："
            and not is_landmark(text, sent_toks[0])
        ):
            nl = text.find("\n", s, end)
            line_site = (end if nl < 0 else nl, sent_toks[0])
        prev_scene = scene[1] if scene is not None and scene[0] == si - 1 else None
        new_scene = _scene(text, s, cut, sent_toks, scopes, si)
        placeless = not any(t.cat in ("LOC", "POLYP", "MAL") for t in sent_toks)
        if new_scene is None and prev_scene is not None and placeless:
            # "The tattoo was identified in the ascending colon. The EMR scar was examined with NBI. At the scar edge
            # a 4 mm …": a sentence that names no place keeps the scene
            new_scene = (si, prev_scene)
        scene = new_scene
        site_intro = False  # "In the transverse colon there were two polyps: a 7 mm ... and a 3 mm ...": their site
        if e in intro_ends:
            sites = [t for t in sent_toks if t.cat == "LOC" and t.value != "unspecified" and not is_landmark(text, t)]
            if sites and len({t.value for t in sites}) == 1 and not cx.status_of(sites[0], scopes).negated:
                scene, site_intro = (si, sites[0]), True
        # a hedged mention in a sentence about the preparation is a disclaimer ("polyps cannot be excluded"),
        # unless the sentence places or sizes it: then it is a lesion the stool kept from being characterised
        prep = cx.PREP_RE.search(text, s, cut) is not None and not any(
            t.cat in ("SIZE", "LOC") and not cx.status_of(t, scopes).negated for t in sent_toks
        )
        for t in sent_toks:
            if t.cat == "MAL" and cx.status_of(t, scopes).current:
                res.malignancy_spans.append(Span(t.start, t.end))
        mentions: list[tuple[cx.Token, cx.Status]] = []
        for t in sent_toks:
            if t.cat == "POLYP" and _qualifies(text, t, sent_toks):
                if _is_mimic(text, t, sent_toks, cut):
                    continue
                if t.value == "elevation" and _RIM_RE.search(text, max(s, t.start - 16), t.start):
                    continue
                near = [x for x in sent_toks if x.cat == "MIMIC" and t.start - 8 <= x.end <= t.start]
                if cx.is_vague(t) and near and _LIKE_MIMIC_RE.fullmatch(text, near[-1].end, t.start):
                    continue
                st = cx.status_of(t, scopes)
                if st.negated or (st.hedged and prep and not st.historical):
                    if st.negated:
                        res.negated_spans.append(Span(t.start, t.end))
                    continue
                if st.historical:
                    continue
                mentions.append((t, st))
        if not mentions and any(t.cat == "MIMIC" and cx.status_of(t, scopes).current for t in sent_toks):
            mimic_at = {
                t.value for t in sent_toks if t.cat == "LOC" and t.value != "unspecified" and not is_landmark(text, t)
            }
            res.mimic_sites.update(mimic_at or {"*"})  # "*": a look-alike named for no segment ("诊断：缺血性肠炎可能")
        if mentions:
            mentions += _elliptical_mentions(text, sent_toks, mentions[0][0].end, cut, scopes)
            mentions.sort(key=lambda m: m[0].start)
        if not mentions and (res.list_open or s in intro_ends) and s > 0 and text[s - 1] in ":：":
            # the items of a counted list introduction ("Four polyps were removed: one in the caecum, two in ...")
            mentions = _elliptical_mentions(text, sent_toks, s - 1, cut, scopes)
            if not mentions:  # "Eleven polyps were removed: caecum x3, ascending x4, ..."
                # each item from its segment to its number, so that the next segment starts the next item
                times = [
                    (t, m) for t in sent_toks if t.cat == "LOC" and (m := _TIMES_RE.match(text, t.end)) is not None
                ]
                mentions = [
                    (cx.Token("POLYP", "ellipsis", t.start, m.end(), m.group("n")), cx.Status()) for t, m in times
                ]
        if not mentions and last_built and si == last_group_sentence + 1 and _resolved_as_mimic(text, s, sent_toks):
            # "A 2 mm pale elevation raised the possibility of a diminutive polyp; on NBI it was a lymphoid follicle."
            for g in last_built:
                if g.hedged or _vague_group(text, g):
                    for pool in (res.groups, res.hedged):
                        if g in pool:
                            pool.remove(g)
            last_built = []
            continue
        if not mentions and res.groups and si <= last_group_sentence + 2:  # (after "both were removed.")
            more = _continued_item(text, s, cut, sent_toks, scopes, kind)
            if more is not None:
                res.groups.append(more)
                last_group_sentence = si
                continue
        if not mentions:
            for implied in _implied_mentions(text, sent_toks, scopes, res.list_open):
                st = cx.status_of(implied, scopes)
                if st.current:
                    mentions.append((implied, st))
        if not mentions and si == last_group_sentence + 1:
            sibling = _sibling_item(text, s, cut, sent_toks, scopes, res)
            if sibling is not None:
                res.groups.append(sibling)
                last_group_sentence = si
                continue
        if not mentions:
            if _follow_up(text, s, sent_toks, scopes, res, si, last_group_sentence):
                last_group_sentence = si  # a form's fields follow one another ("Location: ...", "Size: ...")
            continue
        # Merge appositions ("a polyp, likely an adenoma") and find window boundaries between polyps.
        primaries: list[tuple[cx.Token, cx.Status, list[cx.Token]]] = []
        bounds: list[int] = []
        for t, st in mentions:
            if primaries:
                pt, pst, extra = primaries[-1]
                between_end = (extra[-1] if extra else pt).end
                seps = list(_SEP_RE.finditer(text, between_end, t.start))
                pre = text[seps[-1].end() : t.start] if seps else ""
                has_own = (
                    any(x.cat in ("SIZE", "LOC") and seps and seps[-1].end() <= x.start < t.start for x in sent_toks)
                    or find_count(
                        text,
                        seps[-1].end() if seps else t.start,
                        t.start,
                        t.end,
                        t.end,
                        [(x.start, x.end) for x in sent_toks if x.cat in ("SIZE", "MORPH")],
                    )
                    is not None
                )
                # a guess at histology ("平坦型病变（腺瘤可能）") does not question that the lesion is there
                # ("a 10 mm polypoid protrusion ... - polyp vs inverted diverticulum", "polypoid lesion (polyp vs X)")
                vague = (
                    (pt.value in ("elevation", "lesion") or (cx.POLYPOID_RE.match(pt.text) is not None and not has_own))
                    and st.hedged
                    and not pst.hedged
                    and (t.value == "polyp" or (t.value == "ssl" and pt.value == "elevation"))
                    and cx.POLYPOID_RE.match(t.text) is None
                )
                # ... it is said of that lesion: "息肉（增生性可能）" is one polyp
                guess = (
                    st.hedged
                    and not pst.hedged
                    and t.value != "polyp"
                    and _OPEN_BRACKET_RE.fullmatch(text, between_end, t.start)
                )
                if t.value not in ("ellipsis", "implied") and (
                    vague
                    or guess
                    or (
                        (not seps or _APPOSITION_RE.search(pre) or not has_own)
                        and st.hedged == pst.hedged
                        and not _NEW_MARK_RE.search(pre)
                    )
                ):
                    if vague:  # "见一隆起，可疑息肉": the elevation itself is only possibly a polyp
                        primaries[-1] = (pt, st, extra)
                    extra.append(t)
                    continue
                bounds.append(seps[-1].start() if seps else t.start)
            primaries.append((t, st, []))
        edges = [s, *bounds, cut]
        built: list[Group] = []
        for i, (t, st, extra) in enumerate(primaries):
            g = _build_group(text, t, extra, (edges[i], edges[i + 1]), sent_toks, st, kind, scopes)
            if g.summary and _LIST_INTRO_RE.search(text, edges[i], edges[i + 1]):
                res.list_open = True
            if g.summary:
                if g.count_explicit and g.count is not None and not site_intro:  # a segment's list is not the total
                    res.summary_counts.append((g.count, g.count_spans[0] if g.count_spans else g.spans[0]))
                res.summary_groups.append(g)
                continue
            intro_group = res.summary_groups[-1] if res.list_open and res.summary_groups else None
            if t.value == "implied" and not g.sizes and intro_group is not None and len(intro_group.sizes) == 1:
                # "Six polyps were removed, sizes 2-6 mm:\n- Cecum (2)": the introduction's one size is each item's
                g.sizes, g.size_spans = list(intro_group.sizes), list(intro_group.size_spans)
            if (
                not g.locations
                and prev_scene is not None
                and not _DEFINITE_RE.search(text, max(0, t.start - 40), t.start)
            ):
                # "The tattooed segment of the ascending colon was examined. At the scar edge, a 5 mm polyp."
                g.locations.append((prev_scene.value, Span(prev_scene.start, prev_scene.end), 0))
            same_site = _SAME_SITE_RE.search(text, s, t.start) or _ANOTHER_SEEN_RE.match(text, s)
            if not g.locations and res.groups and same_site:
                g.locations = _named_site(res.groups[-1])
            if (
                line_site is not None
                and t.start < line_site[0]
                and not any(v != "unspecified" for v in g.location_values())
            ):
                # "Sigmoid colon: moderate diverticulosis. Amongst the diverticula a 5 mm polyp at 32 cm ...": the
                # segment that heads the line is the site of what the line describes
                site = line_site[1]
                g.locations = [(site.value, Span(site.start, site.end), 0)]
            if res.removal_intro is not None and res.removal_intro[0] == si - 1 and g.removed is None:
                g.set_removed(True, res.removal_intro[1])  # "CSP x2: 5mm SSL AC, 4mm HP RS."
            target = res.hedged if st.hedged else res.groups
            same = [x for x in target if x.section == kind]
            refs = _refers_back(text, g, t, same)
            if refs and len(refs) > 1 and g.count_explicit:
                continue
            if refs:
                for r in refs:
                    r.absorb(g, part=t.value == "implied" and _has_parts(r))
            else:
                target.append(g)
                built.append(g)
        _share(built)
        last_built = built
        last_group_sentence = si


def _sibling_item(
    text: str, s: int, e: int, sent_toks: list[cx.Token], scopes: list[cx.Scope], res: _SectionResult
) -> Group | None:
    """A telegraphic item right after a one-polyp item, made of nothing but another size and a removal of this
    exam ("Sigmoid: 6 mm sessile - CSP; 3 mm - CFP"): a second polyp at the same site. Not a restatement of the
    same polyp (same size) nor anything with more words ("3 mm base, snared")."""
    if not res.groups or len(sent_toks) < 2 or sent_toks[0].cat != "SIZE":
        return None
    prev = res.groups[-1]
    if prev.count != 1 or prev.each or not prev.sizes or prev.hedged:
        return None
    if any(t.cat not in ("SIZE", "REM") for t in sent_toks) or sum(t.cat == "SIZE" for t in sent_toks) != 1:
        return None
    rem = [t for t in sent_toks if t.cat == "REM"]
    if not all(t.value == "yes" and cx.status_of(t, scopes).current for t in rem):
        return None
    pos = s
    for t in sent_toks:  # only separators between the tokens
        if _ITEM_FILLER_RE.fullmatch(text, pos, t.start) is None:
            return None
        pos = t.end
    if _ITEM_FILLER_RE.fullmatch(text, pos, e) is None:
        return None
    size = parse_size(text, sent_toks[0].start, sent_toks[0].end)
    if size is None or list(size.values) == prev.sizes:
        return None
    g = Group(kind="implied", section=prev.section, hedged=False)
    g.spans = [Span(sent_toks[0].start, sent_toks[0].end)]
    g.sizes, g.size_spans = list(size.values), [Span(sent_toks[0].start, sent_toks[0].end)]
    g.locations = _named_site(prev)
    g.set_removed(True, Span(rem[0].start, rem[0].end))
    return g


def _resolved_as_mimic(text: str, s: int, sent_toks: list[cx.Token]) -> bool:
    """The sentence says that what was just described is a look-alike ("On NBI near focus it was a lymphoid follicle.",
    "It proved to be a prominent fold.")."""
    m = _RESOLVED_RE.match(text, s)
    if m is None:
        return False
    first = next((t for t in sent_toks if t.start >= m.end() and t.cat != "LOC"), None)
    return first is not None and first.cat == "MIMIC" and first.start - m.end() <= 30


def _continued_item(
    text: str, s: int, e: int, sent_toks: list[cx.Token], scopes: list[cx.Scope], section: str
) -> Group | None:
    """A sentence right after polyps that goes on counting them without a polyp noun ("A third, also diminutive,
    was found in the rectum and removed.", "A couple more, in the descending colon, measured 4 mm and 6 mm."): one
    more polyp for an ordinal, that many for "N more", described by the sentence's own segment, size and removal."""
    m = _CONTINUED_RE.match(text, s)
    if m is None or any(t.cat in ("MAL", "MIMIC") for t in sent_toks) or _NORMAL_RE.search(text, s, e):
        return None
    if any(sc.kind == "neg" for sc in scopes):  # "A second pass through the caecum showed no polyp."
        return None
    if not any(t.cat in ("LOC", "SIZE") for t in sent_toks):
        return None
    if m.group("more"):
        word = re.sub(r"\s+", " ", m.group("more").lower())
        n = int(word) if word.isdigit() else lx.EN_NUMBERS.get(word, lx.EN_NUMBERS.get(word + " of"))  # "a couple"
        if n is None:
            return None
    else:
        n = 1
    mention = cx.Token("POLYP", "implied", m.start("head"), m.end("head"), m.group("head"))
    g = _build_group(text, mention, [], (s, e), sent_toks, cx.Status(), section, scopes)
    g.count, g.count_explicit, g.each = n, True, False
    g.count_spans = [Span(mention.start, mention.end)]
    return g


def _scene(
    text: str, s: int, e: int, sent_toks: list[cx.Token], scopes: list[cx.Scope], si: int
) -> tuple[int, cx.Token] | None:
    """A sentence that only names one segment (and perhaps a resection), neither negated, normal, nor on the
    scope's route ("The tattooed segment of the ascending colon was examined.", "Check after EMR at the hepatic
    flexure.", "升结肠："; not "Retroflexion in the rectum."): the scene of the next sentence."""
    if not sent_toks:
        return None
    locs = [t for t in sent_toks if t.cat != "REM"]  # "Check 6 months after EMR at the hepatic flexure."
    if not locs:
        return None
    tok = locs[0]
    for t in locs:
        if t.cat != "LOC" or t.value != tok.value:
            return None
    if tok.value == "unspecified" or _NORMAL_RE.search(text, s, e) or _ROUTE_RE.search(text, s, e):
        return None
    if any(is_landmark(text, t) or cx.status_of(t, scopes).negated for t in sent_toks):
        return None
    return si, tok


def _follow_up(
    text: str, s: int, sent_toks: list[cx.Token], scopes: list[cx.Scope], res: _SectionResult, si: int, last_si: int
) -> bool:
    """A sentence right after a polyp description, with no polyp word: "Removed with a cold snare."; also a
    form's field ("Location: [x] Sigmoid", "Number: 1", "部位：乙状结肠"). True when it was one."""
    if si != last_si + 1 or not res.groups or any(t.cat in ("MAL", "MIMIC") for t in sent_toks):
        return False
    g = res.groups[-1]
    form = _FORM_FIELD_RE.match(text, s)
    if form is not None and form.group("field").startswith(("number", "count", "数")):
        n = zh_number(form.group("n")) if form.group("n") else None  # "Number: 各1", "Number: several"
        if n is not None and n > 0 and not g.count_explicit and not res.summary_counts:
            g.count, g.count_explicit, g.count_spans = n, True, [Span(form.start("n"), form.end("n"))]
        return True
    locs = [t for t in sent_toks if t.cat == "LOC" and t.value != "unspecified"]
    if form is not None and locs and not g.locations and not any(cx.status_of(t, scopes).negated for t in locs):
        g.locations = [(t.value, Span(t.start, t.end), 0) for t in locs]
    for t in sent_toks:
        if t.cat == "REM":
            g.set_removed(t.value == "yes" and not cx.status_of(t, scopes).negated, Span(t.start, t.end))
        elif t.cat == "MORPH" and g.morph is None and not cx.status_of(t, scopes).negated:
            value = morph_value(t)  # not "No flat or raised dysplastic lesions."
            if value != "unspecified":
                g.morph, g.morph_spans = value, [Span(t.start, t.end)]
                if g.count != 1 or g.each:  # "Two polyps, 4 and 9 mm. The larger one pedunculated."
                    g.morph_of = _morph_owner(text, t, sent_toks, scopes)
        elif t.cat == "SIZE" and not g.sizes and _SIZE_WORDS_RE.search(text, max(0, t.start - 30), t.start):
            sz = parse_size(text, t.start, t.end)
            if sz is not None:
                g.sizes, g.size_spans = list(sz.values), [Span(t.start, t.end)]
    return form is not None


def _pathology(
    text: str, orig: str, start: int, end: int, src: str, fallback: bool = True
) -> tuple[list[str], list[Span], list[str]]:
    """Pathology categories stated (current, not negated) in ``text[start:end]`` with their spans.

    With ``fallback``, a result that names none of the categories ("no significant abnormality",
    "endometriosis") is "other"; a pending result gives nothing.
    """
    cats: list[str] = []
    spans: list[Span] = []
    cat_of_span: list[str] = []
    hedged_cats: list[tuple[str, Span]] = []
    for s, e in split_sentences(text, start, end, orig):
        toks = cx.scan(cx.PATH, text, orig, s, e)
        if not toks:
            continue
        scopes = cx.scopes_for_sentence(text, s, e)
        cur = [t for t in toks if cx.status_of(t, scopes).current]
        # "hyperplastic polyps; a sessile serrated lesion cannot be entirely excluded": a hedged category counts only
        # when the result states none
        hedged = [t for t in cur if cx.status_of(t, scopes).hedged and t.value not in ("other", "dysplasia")]
        hedged_cats += [(t.value, Span(t.start, t.end, src)) for t in hedged]
        cur = [t for t in cur if t not in hedged]
        # "黏膜低级别上皮内瘤变": the mucosa named right before a dysplasia term is its site, not a result of its own
        dys = [t.start for t in cur if t.value == "dysplasia"]
        cur = [t for t in cur if t.value != "other" or not any(d >= t.end and not text[t.end : d].strip() for d in dys)]
        has_other = any(t.value != "dysplasia" for t in cur)
        for t in cur:
            value = t.value
            if value == "dysplasia":
                if has_other:
                    continue
                value = "adenoma"
            cats.append(value)
            spans.append(Span(t.start, t.end, src))
            cat_of_span.append(value)
    if not cats and hedged_cats:
        cats, spans, cat_of_span = (
            [c for c, _ in hedged_cats],
            [sp for _, sp in hedged_cats],
            [c for c, _ in hedged_cats],
        )
    if fallback and not cats and not _PENDING_RE.search(text, start, end):
        body = text[start:end].strip(" \n:：-")
        if len(re.findall(r"[A-Za-z]{2,}|[\u4e00-\u9fff]", body)) >= 2:
            lead = len(text[start:end]) - len(text[start:end].lstrip(" \n:：-"))
            cats, spans, cat_of_span = ["other"], [Span(start + lead, start + lead + len(body), src)], ["other"]
    return cats, spans, cat_of_span


def _vague_group(text: str, g: Group) -> bool:
    """A group whose mention names no polyp: an elevation, a lesion, or a "polypoid"/"polyp-like"/息肉样 one."""
    return g.kind in ("elevation", "lesion") or (
        g.kind == "polyp" and cx.POLYPOID_RE.match(text, g.spans[0].start) is not None
    )


def _hedged_by_impression(text: str, fnd: _SectionResult, imp: _SectionResult) -> None:
    """A vague elevation or lesion of Findings (also a "polypoid"/息肉样 one) that the Impression only calls a possible
    polyp or leaves undetermined ("横结肠见一约0.3cm小隆起 … 诊断：横结肠隆起（息肉？）", "乙状结肠见一约0.6cm
    息肉样隆起 … 诊断：乙状结肠隆起，性质待定") is hedged too, when the Impression asserts no polyp."""
    if imp.groups or not imp.hedged:
        return
    for g in list(fnd.groups):
        if not _vague_group(text, g):
            continue
        locs = [v for v in g.location_values() if v != "unspecified"]
        if any(_could_be_at(locs, h) for h in imp.hedged):
            fnd.hedge(g)


def _impression_restates_hedged(text: str, fnd: _SectionResult, imp: _SectionResult) -> None:
    """A vague elevation or lesion of the Impression ("直肠小隆起") at a segment where Findings only hedged one
    ("直肠见一处约0.2cm小隆起，息肉？淋巴滤泡？") restates that hedge, when Findings assert no polyp there."""
    for g in list(imp.groups):
        if not _vague_group(text, g):
            continue
        locs = [v for v in g.location_values() if v != "unspecified"]
        if not locs or any(_could_be_at(locs, f) for f in fnd.groups):
            continue
        if any(_could_be_at(locs, h) for h in fnd.hedged):
            imp.hedge(g)


def _explained_by_impression(text: str, fnd: _SectionResult, imp: _SectionResult) -> None:
    """A vague elevation or lesion of Findings (also a "polypoid"/息肉样 one) whose segment the Impression names only
    for a look-alike ("回肠末段黏膜可见散在多发小颗粒样隆起 … 诊断：回肠末段淋巴滤泡增生") is that look-alike, when the
    Impression names no polyp at all."""
    if imp.groups or imp.hedged or not imp.mimic_sites:
        return
    for g in list(fnd.groups):
        if not _vague_group(text, g):
            continue
        locs = {v for v in g.location_values() if v != "unspecified"}
        if (locs and locs <= imp.mimic_sites) or "*" in imp.mimic_sites:
            fnd.groups.remove(g)


def _merge_impression(findings: list[Group], impression: list[Group]) -> list[Group]:
    """Impression restates Findings: add an Impression group only at a location Findings did not cover."""
    if not findings:
        return list(impression)
    out = list(findings)
    for g in impression:
        locs = [v for v in g.location_values() if v != "unspecified"]
        matches = [f for f in findings if _could_be_at(locs, f)]
        if matches:
            if len(matches) == 1:
                matches[0].absorb(g)
            continue
        out.append(g)
    return out


def _count_lines(text: str, res: _SectionResult) -> None:
    """A counted mention that says nothing else ("Polyps removed: 3", "Two polyps were removed.", also a count field
    of one: "Polyp count: 1") followed by described polyps that add up to its number is their total, not more
    polyps."""
    if len(res.groups) < 2:
        return
    keep: list[Group] = []
    for i, g in enumerate(res.groups):
        later = res.groups[i + 1 :]
        field = _COUNT_FIELD_RE.match(text, g.spans[0].start)
        if field is not None and field.group("many"):
            if any(x.count is None for x in later) and not g.sizes and not g.location_values():
                res.summary_groups.append(g)  # "Polyps detected: >10" over the group it counts
                continue
            field = None
        if field is not None and not g.count_explicit:
            g.count, g.count_explicit = int(field.group("n")), True  # "Polyp count: 1"
        later_total = _total(later) if later else None
        if field is not None and later_total is not None and g.count is not None and later_total > g.count:
            # a form's count field that the itemised polyps below it outnumber is a stale total ("Polyps detected: 2"
            # over three "Polyp n | Site: …" rows): the items count
            res.summary_groups.append(g)
            continue
        if (
            g.count_explicit
            and g.count is not None
            and (g.count > 1 or field is not None)
            and not g.each
            and not any(v != "unspecified" for v in g.location_values())
            and not g.sizes
            and g.morph is None
            and later
            and _total(later) == g.count
        ):
            res.summary_counts.append((g.count, g.count_spans[0] if g.count_spans else g.spans[0]))
            res.summary_groups.append(g)
        else:
            keep.append(g)
    res.groups = keep


def _total(groups: list[Group]) -> int | None:
    total = 0
    for g in groups:
        if g.count is None:
            return None
        total += g.count * (max(1, len({v for v in g.location_values()})) if g.each else 1)
    return total


def extract_rules(text: str, pathology: str | None = None) -> ReportLabels:
    """Label one report with the rules.

    Args:
        text: the report (any mix of English and Chinese).
        pathology: an optional separate pathology result; its spans have ``src="pathology"``.

    Returns:
        The labels with evidence spans (offsets into ``text`` / ``pathology`` as given).
    """
    norm = normalize(text)
    low = lower_ascii(norm)
    lang = detect_lang(low)
    per_kind: dict[str, _SectionResult] = {"findings": _SectionResult(), "impression": _SectionResult()}
    path_cats: list[str] = []
    path_spans: list[Span] = []
    path_cat_of: list[str] = []
    seen: set[tuple[str, str]] = set()
    for sec in split_sections(low):
        body = " ".join(low[sec.start : sec.end].split())
        if body and (sec.kind, body) in seen:
            continue  # a block an EHR copy repeats word for word ("Findings: …" twice) counts once
        seen.add((sec.kind, body))
        if sec.kind in FINDING_SECTIONS:
            part = "impression" if sec.kind == "impression" else "findings"
            _finding_section(low, norm, sec.start, sec.end, part, per_kind[part])
        elif sec.kind == "pathology":
            c, sp, co = _pathology(low, norm, sec.start, sec.end, "text")
            path_cats += c
            path_spans += sp
            path_cat_of += co
    for res in per_kind.values():
        for a, b, line_start in res.pathology_segments:
            c, sp, co = _pathology(low, norm, a, b, "text", fallback=line_start)
            path_cats += c
            path_spans += sp
            path_cat_of += co
    if pathology:
        pnorm = normalize(pathology)
        c, sp, co = _pathology(lower_ascii(pnorm), pnorm, 0, len(pnorm), "pathology")
        path_cats += c
        path_spans += sp
        path_cat_of += co
    fnd, imp = per_kind["findings"], per_kind["impression"]
    _hedged_by_impression(low, fnd, imp)
    _impression_restates_hedged(low, fnd, imp)
    _explained_by_impression(low, fnd, imp)
    for res in (fnd, imp):
        _count_lines(low, res)
        if not res.groups and res.summary_groups:  # "A total of 5 polyps were removed." and nothing else
            res.groups = res.summary_groups
    out = ReportLabels(lang=lang, backend="rules")
    groups = _merge_impression(fnd.groups, imp.groups)
    hedged = _merge_impression(fnd.hedged, imp.hedged)
    if groups:
        out.polyp = "present"
        out.evidence["polyp"] = [s for g in groups for s in g.spans]
        summary = fnd.summary_counts or imp.summary_counts
        f_total, i_total = _total(fnd.groups), _total(imp.groups)
        if summary:
            out.polyp_count = max(c for c, _ in summary)
            out.evidence["polyp_count"] = [s for _, s in summary]
            counted = [g for g in groups if g.count is not None]
            if len(counted) < len(groups) and counted and _total(counted) == out.polyp_count:
                # "Five polyps were removed: three ... and two ... A few additional diminutive polyps ...": the
                # total covers the counted items; an unnumbered group beside them leaves the count unknown
                out.polyp_count = None
        else:
            total = _total(groups)
            if (
                fnd.groups
                and f_total is None
                and i_total is not None
                and i_total >= len(fnd.groups)
                and all(g.count_explicit for g in imp.groups)
            ):  # "Findings: polyps in the cecum and sigmoid ... Impression: 3 polyps removed"
                total = i_total
            out.polyp_count = total
            out.evidence["polyp_count"] = [s for g in groups for s in (g.count_spans or g.spans)]
        one = groups[0]
        if (
            len(groups) == 1
            and one.count is None
            and out.polyp_count is not None
            and not one.each
            and len(set(one.location_values())) <= 1
        ):
            # "乙状结肠见多发小息肉，…，共钳除3枚", "Impression: 3 polyps": the group's number, given elsewhere
            one.count = out.polyp_count
        out.polyps = [p for g in groups for p in expand(g)]
    elif hedged:
        # Uncertain: no polyp is asserted, so none is listed; the hedged mentions are the evidence.
        out.polyp, out.polyp_count = "uncertain", None
        out.evidence["polyp"] = [s for g in hedged for s in g.spans]
    else:
        out.polyp, out.polyp_count = "absent", 0
        out.evidence["polyp"] = fnd.negated_spans + imp.negated_spans
    if path_cats:
        best = min(path_cats, key=PATHOLOGY_ORDER.index)
        out.pathology = best
        out.evidence["pathology"] = [s for s, c in zip(path_spans, path_cat_of, strict=True) if c == best]
    mal = fnd.malignancy_spans + imp.malignancy_spans
    if out.pathology == "adenocarcinoma":
        mal = mal + out.evidence["pathology"]
    out.malignancy_suspected = bool(mal)
    out.evidence["malignancy_suspected"] = mal
    return out
