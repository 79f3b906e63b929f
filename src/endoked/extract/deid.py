"""De-identification of report text before it leaves the process (LLM backends).

One rule set for English and Chinese; each identifier becomes a placeholder naming its category:

- ``[NAME]``: person names after a title or role (Dr., Mr., Mrs., Ms., Mx., Miss, Prof., Nurse, Sister,
  Doctor; 医生, 医师, 护士, 主任, 教授 and 张先生, 李医生 ...), after a label ("Name:", "Patient name:",
  "Pt. name:", "Endoscopist:", "signed by", "cc:", 姓名, 患者, 检查医师, 家属 ...), before a credential
  ("Jane Doe, MD"), and bare names where one part is a listed given name or surname (package data
  ``names_given.txt``, ``names_surname.txt``: "john smith", "olga nakamura"; the word before a listed
  surname joins only in the same case) in any case; particles (de, la, van, von, O', Mc, hyphens) and
  initials stay inside the name. Chinese names after a label or 患者 (2-4 characters, compound surnames
  included), surname + title, and a surname + 1-2 characters in a person-only context (与王伟一同就诊,
  嘱李娜按时复查, 张建国陪同检查).
- ``[DATE]``: ISO (2024-03-12, with a time), 12/03/2024, 3/12/24, 12.03.2024, 12-Mar-2024, 12 March 2024,
  March 12, 2024, Mar 12, March 2024, 2024-Mar-12, 2024年3月12日, 2024年3月, 3月12日, 二〇二四年三月十二日,
  and "Date:"/"DOB:"/"日期：" values. Years alone are kept (they carry clinical timing, "s/p polypectomy 2019").
- ``[ID]``: labelled ids (MRN, medical record / record no., patient id, account / Acct, accession, SSN,
  insurance, member, policy, NHS, encounter, visit, case; 病历号, 住院号, 门诊号, 身份证号, 医保卡号, 病理号 ...),
  US social security numbers, Chinese resident ID-card numbers (18 digits, last may be X), runs of 6 or
  more digits, letter prefixes with 5 or more digits (AB123456).
- ``[PHONE]``: North-American and international formats, Chinese mobiles (+86, 11 digits) and landlines,
  labelled numbers ("Tel:", "Fax", 电话, 手机, 联系方式).
- ``[EMAIL]``, ``[URL]`` (http(s)://, www.), ``[IP]`` (IPv4, IPv6).
- ``[ADDRESS]``: labelled addresses ("Address:", 住址, 地址) to the end of the field, English street
  addresses (number, street name, suffix, unit, city, state, ZIP; P.O. boxes) and Chinese ones (省, 市,
  区/县, 镇, 街道, 路/街/大道 + 号, 栋, 单元, 室).
- ``[AGE]``: ages over 89 ("92-year-old", "92 yo", "age 95", "aged 101", 92岁, 年龄：95).

Clinical content is left alone: sizes (8 mm, 0.5 cm, 0.4×0.6cm), counts, distances (at 25 cm, 距肛门15cm),
ratios and scores (BBPS 2/3/3, 6/8/10 mm), Paris classes (0-Is), locations, pathology and eponyms
(Lynch, Crohn, Paris, Kudo, Lugol, Hartmann, Yamada ...: :data:`_EPONYMS` are never names). This is
rule-based: it removes the identifiers that reports usually carry; a bare English name with neither part
listed, or a bare Chinese name outside the person contexts, can pass.

Every replacement is recorded, so spans found in the de-identified text map back to the original.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from importlib import resources

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "温康施牛樊葛邢乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿兰焦俞左柳甘祝包符舒阮柯纪梅童凌毕季裴"
    "霍涂苗谷盛曲翁冉骆蓝辛靳柴蒙鲍喻祁蒲房滕屈饶牟艾尤阳穆农司卓古吉缪简项芦麦褚娄窦戚岑"
    "党宫费卜冷晏席卫米柏瞿桂佟臧闵苟邬边卞姬仇栾隋刁沙荣巫寇桑郎甄丛仲虞敖巩佘池麻苑迟邝"
)
_SURNAMES2 = (
    "欧阳|司马|诸葛|上官|东方|皇甫|令狐|慕容|尉迟|长孙|宇文|司徒|夏侯|端木|公孙|轩辕|独孤|南宫|西门|"
    "百里|呼延|万俟|闻人|澹台|公冶|宗政|濮阳|太史|申屠"
)
_HAN = r"[\u4e00-\u9fff]"


def _words(block: str) -> list[str]:
    """The white-space separated words of ``block``."""
    return block.split()


def _name_list(file: str) -> set[str]:
    """The names of a package data file (lower case, white-space separated; ``#`` lines are comments)."""
    text = resources.files("endoked.extract").joinpath(file).read_text(encoding="utf-8")
    return {w for line in text.splitlines() if not line.startswith("#") for w in line.split()}


# Eponyms and place names of colonoscopy and pathology reports that are also surnames or given names: never a
# name on their own ("Lugol", "Crohn disease", "Hartmann pouch", "Paris 0-IIa", "Lynch syndrome").
_EPONYMS = frozenset(
    _words("""
lugol crohn crohns hartmann paris kudo lynch barrett barretts haggitt kikuchi sano forrest boston mayo peutz
jeghers cowden turcot gardner vienna prague graves wilson wells marsh addison hirschsprung meckel bauhin
houston treitz dukes astler coller spigelman amsterdam bethesda kyoto sydney montreal rome hinchey
yamada dixon roth whipple billroth roux nissen heller miles kock brooke kraske lembert ogilvie zenker
schatzki mallory weiss cronkhite gorlin bannayan muir torre borrmann dieulafoy cameron graham savary
kaposi hodgkin burkitt sengstaken blakemore
""")
)


# a Chinese given name ends at punctuation, a space, a digit, the sex, or the next field of a header line
_ZH_END = (
    r"(?=$|[\s\d,，;；。、.:：()（）\[\]【】/|]|[男女]|性别|年龄|科室|病[历区案床理]|住院|门诊|床|"
    r"检查|日期|电话|手机|联系|身份|医保|地址|住址|送检|申请|报告|审核|签名|ID|No)"
)
_ZH_NAME = (
    rf"(?:(?:{_SURNAMES2}){_HAN}{{1,2}}?|[{_SURNAMES}]{_HAN}{{1,2}}?|{_HAN}{{2,3}}?){_ZH_END}"
    rf"|{_HAN}{{1,4}}·{_HAN}{{1,6}}"
)
# words after 患者/医生/与/告知 that start with a surname character but are not names
_ZH_NOT_NAME = (
    r"(?!高龄|高血压|高脂|高热|高危|白细胞|苏醒|[左右][侧上下]|包括|严重|余[肠处下]|史|平素|平时|毛发|金属|"
    r"于[今本我外当昨前此上下近去\d]|方[式法案向面位]|常规|周[围边期]|高[级度纤]|[黄白蓝]色|程度|任何|"
    r"康复|温度|毛细|江河)"
)
_ZH_NAME_S = (
    rf"{_ZH_NOT_NAME}(?:(?:{_SURNAMES2}){_HAN}{{1,2}}?|[{_SURNAMES}]{_HAN}{{1,2}}?){_ZH_END}"
    rf"|{_HAN}{{1,4}}·{_HAN}{{1,6}}"
)

_ZH_BARE_NAME = (
    r"(?P<v>"
    + _ZH_NOT_NAME
    + r"(?:(?:"
    + _SURNAMES2
    + r")"
    + _HAN
    + r"{1,2}?|["
    + _SURNAMES
    + r"]"
    + _HAN
    + r"{1,2}?|"
    + _HAN
    + r"{1,4}?·"
    + _HAN
    + r"{1,6}?))"
)
"""A bare Chinese name as group ``v``: a compound or single surname and 1-2 characters, or a transliterated
name with a middle dot; the context that makes it a person is the caller's."""

# Words that end a name (function words, report verbs, clinical vocabulary, field labels), matched in any case.
_STOP = sorted(
    set(
        _words("""
a an the and or but nor of in on at to for from with without by as is are was were be been being has have had
do does did not no yes this that these those it its he she his her him they them their we our you your i me my
who whom which what when where while after before during since until then than there here also only very
will would shall should can could may might must
noted seen found performed underwent undergoing tolerated assisted reports reported denies denied presents
presented states stated says said came comes referred admitted discharged arrived signed dictated reviewed
verified examined consented agreed recommended advised prepped sedated scheduled returned informed was
patient patients pt pts name names nurse nurses doctor doctors physician physicians surgeon surgeons staff
team attending resident fellow endoscopist anesthesia anesthesiologist pathologist pathology department
unit clinic hospital center centre service ward room office lab laboratory
male female man woman men women boy girl mr mrs ms dr prof md do rn phd np pa age aged years year old yo
sex dob mrn id date time report procedure exam examination colonoscopy endoscopy sigmoidoscopy
polyp polyps polypectomy adenoma adenomas lesion lesions mass carcinoma cancer tumor tumour biopsy biopsies
colon rectum rectal cecum caecum sigmoid ascending descending transverse hepatic splenic flexure ileum
ileocecal terminal anal appendix valve mucosa mucosal bowel prep preparation findings impression diagnosis
history indication plan recommendation recommendations follow up repeat normal none negative positive
sessile pedunculated flat snare cold hot forceps emr esd removed retrieved clip clips
mm cm size small large left right today yesterday tomorrow morning afternoon evening night week weeks month
months day days again well good fine poor fair excellent adequate inadequate all any some each every other
another more most less few many much several multiple same new prior previous next last first second third
just now later soon ago about approximately around over under into onto out off up down through via per
because so if though although however therefore please thank thanks ok okay primary care family general
gi gastroenterology surgery medicine internal oncology emergency outpatient inpatient referral self
""")
    )
)
_STOP_RX = "(?:" + "|".join(_STOP) + ")"
_PARTICLE = r"(?i:de|la|le|del|della|delle|der|den|di|da|das|dos|du|van|von|ten|ter|bin|ibn|al|el|st\.?|y)"
# a name word: letters with inner apostrophes/hyphens (O'Brien, McDonald, Smith-Jones), not a stop word
_WORD_ANY = rf"(?i:(?!{_STOP_RX}(?![A-Za-z'’\-]))[A-Za-z](?:[A-Za-z]|['’\-](?=[A-Za-z]))*)"
_WORD_CAP = rf"(?!(?i:{_STOP_RX})(?![A-Za-z'’\-]))[A-Z](?:[A-Za-z]|['’\-](?=[A-Za-z]))*"
_INITIAL = r"[A-Za-z]\.(?=\s)"
_CRED = r"(?:,?\s+(?:MD|M\.D\.|DO|D\.O\.|RN|PhD|Ph\.D\.|NP|PA-C|FACG|MBBS|Jr\.?|Sr\.?|II|III|IV)\b\.?)*"


def _name(word: str, n: int = 4) -> str:
    """A name of 1..n words (``word`` pattern), initials and particles in between."""
    unit = rf"(?:{_INITIAL}|(?:{_PARTICLE}\s+){{0,2}}{word})"
    return rf"{unit}(?:[ \t]+{unit}){{0,{n - 1}}}"


_NAME_ANY = _name(_WORD_ANY)
_NAME_CAP = _name(_WORD_CAP)
# Common English given names that are not also common words ("will", "may", "grace" are left out) and
# common surnames; "john smith" in lower case is found through them.
_GIVEN = sorted(
    set(
        _words("""
james john robert michael william david richard joseph thomas charles christopher daniel matthew anthony donald
steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason jeffrey ryan jacob gary
nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory alexander patrick raymond
dennis jerry tyler aaron jose adam nathan henry douglas zachary peter kyle walter ethan jeremy harold keith
christian roger noah gerald carl terry sean austin arthur lawrence jesse dylan bryan joe jordan billy bruce
albert gabriel logan alan juan wayne roy ralph randy eugene vincent russell elijah louis bobby philip johnny
mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty margaret sandra
ashley kimberly emily donna michelle carol amanda dorothy melissa deborah stephanie rebecca sharon laura
cynthia kathleen amy angela shirley anna brenda pamela emma nicole helen samantha katherine christine debra
rachel carolyn janet catherine maria heather diane ruth julie olivia joyce virginia victoria kelly lauren
christina joan evelyn judith megan andrea cheryl hannah jacqueline martha gloria teresa ann sara madison
frances kathryn janice jean abigail alice judy sophia denise beverly danielle marilyn amber theresa diana
natalie brittany charlotte marie kayla alexis lori jane
wei li ming hua jing ying hui yan xin lei jun hong ping fang xiaoming jianguo
""")
    ).union(_name_list("names_given.txt"))
    - _EPONYMS
)
_SURNAMES_EN = sorted(
    set(
        _words("""
smith johnson williams jones garcia miller davis rodriguez martinez hernandez lopez gonzalez wilson anderson
thomas taylor moore jackson martin thompson harris sanchez clark ramirez lewis robinson walker allen
wright scott torres nguyen flores adams nelson baker hall rivera campbell mitchell carter roberts gomez
phillips evans turner diaz parker cruz edwards collins reyes stewart morris morales murphy cook rogers
gutierrez ortiz morgan cooper peterson bailey reed kelly howard ramos kim cox ward richardson watson
brooks chavez wood james bennett gray mendoza ruiz hughes price alvarez castillo sanders patel myers
ross foster jimenez powell jenkins perry russell sullivan bell coleman butler henderson barnes gonzales
fisher vasquez simmons romero jordan patterson alexander hamilton graham reynolds griffin wallace west
cole hayes bryant herrera gibson ellis tran medina aguilar stevens murray ford castro marshall owens
harrison fernandez mcdonald woods washington kennedy wells vargas henry chen freeman webb tucker guzman
burns crawford olson simpson porter hunter gordon mendez silva shaw snyder mason dixon munoz hunt hicks
holmes palmer wagner black robertson boyd rose stone salazar fox warren mills meyer rice schmidt garza
daniels ferguson nichols stephens soto weaver ryan gardner payne grant dunn kelley spencer hawkins
wang zhang liu yang huang zhao zhou wu xu sun zhu ma hu guo lin luo zheng liang xie song tang
""")
    ).union(_name_list("names_surname.txt"))
    - _EPONYMS
    - {
        "gardner",
        "rose",
        "stone",
        "black",
        "gray",
        "hunt",
        "ward",
        "price",
        "cook",
        "bell",
        "wood",
        "woods",
        "hall",
        "hunter",
        "fox",
        "mason",
        "payne",
        "grant",
        "rice",
        "west",
        "james",
        "thomas",
        "henry",
        "jordan",
        "kelly",
        "russell",
        "alexander",
        "ryan",
        "ma",
        "hu",
        "wu",
        "xu",
        "song",
        "lin",
        "dixon",
        "turner",
        "wilson",
        "miller",
        "parker",
        "hamilton",
    }
)
_GIVEN_RX = "(?:" + "|".join(_GIVEN) + ")"

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_MONTHS_FULL = r"(?:january|february|march|april|june|july|august|september|october|november|december)"
_MON = rf"(?:(?i:{_MONTHS})(?<!may)\.?|May)"  # lower-case "may" is a verb: only "May" is a month
_D = r"(?:0?[1-9]|[12]\d|3[01])"
_M = r"(?:0?[1-9]|1[0-2])"
_Y4 = r"(?:1[89]|20)\d{2}"
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp]\.?[Mm]\.?)?)?"
_UNIT = r"(?!\s*(?:mm|cm|毫米|厘米|mg|ml|mL|%|x|×|\*))"
_ZH_NUM = "〇零一二三四五六七八九"
_ZH_DIG = "一二三四五六七八九十"

_STREET = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|Ter|"
    r"Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Trail|Trl|Crescent|Close|Row|Alley"
)

# (kind, pattern); the group "v", when present, is the part replaced.
_RULES: list[tuple[str, str]] = [
    ("EMAIL", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),
    ("URL", r"(?<![A-Za-z0-9])(?i:(?:https?|ftp)://|www\.)[^\s<>\"'，。；）)]+(?<![.,;:!?])"),
    ("IP", r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?!\d|\.\d|\s*(?:mm|cm))"),
    (
        "IP",
        r"(?i)(?<![A-Za-z0-9:])(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}(?![A-Za-z0-9:])|"
        r"(?<![A-Za-z0-9:])(?:[0-9a-f]{1,4}:){1,6}:"
        r"(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,5})?(?![A-Za-z0-9:])(?<=[0-9a-f:]{4})",
    ),
    # identifiers
    (
        "ID",
        r"(?<![\dA-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
        r"(?![\dA-Za-z])",
    ),
    ("ID", r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"),  # US social security number
    (
        "ID",
        r"(?<![A-Za-z])(?i:mrn|mr\s*#|mr\s*no\.?|medical\s+record(?:\s+(?:number|no\.?|#))?|"
        r"record\s+(?:number|no\.?|#)|patient\s+id|pt\.?\s+id|hospital\s+(?:number|no\.?|id)|"
        r"accession(?:\s+(?:number|no\.?|#))?|acc\.?\s*#|acct\.?|account(?:\s+(?:number|no\.?|#))?|ssn|"
        r"social\s+security(?:\s+(?:number|no\.?|#))?|insurance(?:\s+(?:id|number|no\.?|#))?|member\s+id|"
        r"policy\s+(?:number|no\.?|#)|nhs(?:\s+(?:number|no\.?))?|health\s+card(?:\s+(?:number|no\.?))?|"
        r"encounter(?:\s+(?:id|number|no\.?|#))?|visit\s+(?:id|number|no\.?|#)|case\s+(?:id|number|no\.?|#)|"
        r"csn|fin|id(?:\s+(?:number|no\.?|#))?|licen[cs]e\s+(?:number|no\.?|#)|passport(?:\s+(?:number|no\.?))?|"
        r"serial\s+(?:number|no\.?|#)|病历号|住院号|门诊号|登记号|检查号|ID号|就诊卡号|卡号|医保卡号|医保号|社保卡?号|"
        r"身份证(?:号(?:码)?)?|就诊号|影像号|病案号|床号|病理号|标本号|流水号|申请单号|档案号|报告编号|检查编号|条码号)"
        r"(?![A-Za-z])\s*(?:(?i:number|no\.?|#)\s*)?[:：#]?\s*(?:(?i:number|no\.?)\s*)?[:：#]?\s*"
        r"(?P<v>\d{3}[ ]\d{2}[ ]\d{4}(?!\d)|(?=[A-Za-z\-/]*\d)[A-Za-z0-9][A-Za-z0-9\-/]*)",
    ),
    ("PHONE", r"(?<![\d])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)"),
    ("PHONE", r"(?<![\d])(?:\(0\d{2,3}\)\s?|0\d{2,3}[- ])\d{7,8}(?!\d)"),
    (
        "PHONE",
        r"(?<![A-Za-z0-9])(?:\+?1[-. ]?)?(?:\(\d{3}\)\s?|\d{3}[-. ])\d{3}[-. ]\d{4}"
        r"(?:\s*(?i:x|ext\.?)\s*\d{1,5})?(?![\d])",
    ),
    ("PHONE", r"(?<![A-Za-z0-9+])\+\d{1,3}(?:[-. ]?\(?\d{1,4}\)?){2,5}(?!\d)"),
    (
        "PHONE",
        r"(?<![A-Za-z])(?i:tel|telephone|phone|ph|mobile|cell|fax|pager|contact(?:\s+number)?)\.?\s*"
        r"(?:(?i:no\.?|number|#)\s*)?[:：]?\s*(?P<v>\+?\(?\d[\d ().-]{4,}\d)|"
        r"(?:电话|手机|联系电话|联系方式|手机号(?:码)?|座机|传真|家属电话)\s*[:：]?\s*"
        r"(?P<v2>\+?\(?\d[\d ().-]{4,}\d)",
    ),
    # dates
    ("DATE", rf"(?<![\d.])(?:1[89]|20)\d{{2}}\s*([-/.])\s*{_M}\s*\1\s*{_D}{_TIME}(?!\d|\.\d)"),
    ("DATE", rf"(?<![\d.])(?:1[89]|20)\d{{2}}\s*年\s*{_M}\s*月(?:\s*{_D}\s*[日号])?"),
    (
        "DATE",
        rf"(?<![\d/.-])(?:{_D}([/.-]){_M}\1(?:{_Y4}|\d{{2}})|{_M}([/.-]){_D}\2(?:{_Y4}|\d{{2}}))"
        rf"(?![\d/-]|\.\d){_UNIT}{_TIME}",
    ),
    ("DATE", rf"(?<!\d)(?:{_M}\s*月\s*{_D}\s*[日号])"),
    ("DATE", rf"[{_ZH_NUM}]{{4}}\s*年\s*[{_ZH_DIG}]{{1,2}}\s*月(?:\s*[{_ZH_DIG}]{{1,3}}\s*[日号])?"),
    ("DATE", rf"(?<![A-Za-z\d]){_D}(?:st|nd|rd|th)?[-\s./]*(?:of\s+)?{_MON}[-\s./,]*(?:{_Y4}|'?\d{{2}})(?![\d])"),
    (
        "DATE",
        rf"(?<![A-Za-z]){_MON}[-\s./]*{_D}(?:st|nd|rd|th)?(?:,?[-\s./]*(?:{_Y4}|'\d{{2}}))?(?![\d])"
        rf"{_UNIT}(?!\s*(?i:polyps?|lesions?|times|x\b)){_TIME}",
    ),
    ("DATE", rf"(?<![A-Za-z\d]){_D}(?:st|nd|rd|th)?\s+(?:of\s+)?(?i:{_MONTHS_FULL})\b"),
    ("DATE", rf"(?<![A-Za-z]){_MON}[-\s,./]*{_Y4}(?!\d)"),
    ("DATE", rf"(?<!\d){_Y4}[-\s./]*{_MON}[-\s./]*{_D}(?!\d)"),
    ("DATE", r"(?i:on|dated|date|addendum|dos|seen)[ :]+(?P<v>(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01]))(?![\d/])"),
    (
        "DATE",
        r"(?<![A-Za-z])(?i:date(?:\s+of\s+(?:birth|service|exam|procedure|admission|discharge))?|dob|d\.o\.b\.|"
        r"birth\s*date|日期|出生日期|出生年月|检查日期|报告日期|入院日期|出院日期)\s*[:：]\s*"
        r"(?P<v>(?=[^\s,;，；]*\d)[^\s,;，；]{4,20}(?:\s\d{1,2}:\d{2}(?::\d{2})?)?)",
    ),
    # ages over 89
    ("AGE", r"(?<![\d.])(?:9\d|1[0-4]\d)(?=\s*(?:-|\s)?(?i:years?|yrs?|y\.?o\.?\b|y/o|-?year-old|岁|周岁))"),
    ("AGE", r"(?<![A-Za-z])(?i:age[ds]?|年龄)\s*[:：]?\s*(?P<v>9\d|1[0-4]\d)(?!\d|\.\d)"),
    ("AGE", r"(?<![\d.])(?P<v>9\d|1[0-4]\d)\s*/\s*(?:[MF]|男|女)\b"),
    # addresses
    (
        "ADDRESS",
        r"(?<![A-Za-z])(?i:(?:home\s+|mailing\s+|street\s+)?address|addr\.?)\s*[:：]\s*(?P<v>[^\n;]{3,120}?)"
        r"(?=\s*(?:$|\n|;|\.\s|(?i:tel|phone|mrn|dob|email)\b))",
    ),
    ("ADDRESS", r"(?:住址|地址|家庭住址|现住址|户籍地址|联系地址|通讯地址)\s*[:：]?\s*(?P<v>[^\n;；。，,]{2,80})"),
    (
        "ADDRESS",
        r"(?<![A-Za-z0-9])\d{1,6}[A-Za-z]?(?:-\d{1,4})?\s+(?:[NSEW]\.?\s+|(?:North|South|East|West)\s+)?"
        r"(?:[A-Z][A-Za-z'\-]*\.?\s+){1,4}"
        r"(?:" + _STREET + r")\b\.?"
        r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl|#)\.?\s*#?\w+)?"
        r"(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+){0,2})?(?:,?\s*[A-Z]{2}\b)?(?:,?\s*\d{5}(?:-\d{4})?)?",
    ),
    (
        "ADDRESS",
        r"(?<![A-Za-z0-9])\d{1,6}[A-Za-z]?\s+(?:[A-Za-z][a-z'\-]*\s+){1,4}"
        r"(?:(?i:street|avenue|road|boulevard|lane|drive|court|terrace|parkway|highway)\b|"
        r"(?i:st|ave|rd|blvd|ln|dr)\.)"
        r"(?:,?\s*(?i:apt|apartment|suite|unit)\.?\s*#?\w+)?"
        r"(?:,\s*[A-Za-z]+(?:\s[A-Za-z]+){0,2},?\s*[A-Za-z]{2}\s+\d{5}(?:-\d{4})?(?!\d))?",
    ),
    ("ADDRESS", r"(?i:p\.?\s?o\.?\s+box)\s+\d+"),
    # after a residence cue, or with a city/state/ZIP tail, any street suffix in any case
    (
        "ADDRESS",
        r"(?<![A-Za-z])(?i:(?:lives?|living|resides?|residing|home)\s+at|moved\s+to)\s+"
        r"(?P<v>\d{1,6}[A-Za-z]?\s+"
        r"(?:[A-Za-z][A-Za-z'\-]*\.?\s+){1,4}(?i:" + _STREET + r")\b\.?"
        r"(?:,?\s*(?i:apt|apartment|suite|ste|unit|floor|fl|#)\.?\s*#?\w+)?"
        r"(?:,\s*[A-Za-z]+(?:\s[A-Za-z]+){0,2},?\s*[A-Za-z]{2}\s+\d{5}(?:-\d{4})?(?!\d))?)",
    ),
    (
        "ADDRESS",
        r"(?<![A-Za-z0-9])\d{1,6}[A-Za-z]?\s+(?:[A-Za-z][A-Za-z'\-]*\.?\s+){1,4}(?i:" + _STREET + r")\b\.?"
        r"(?:,?\s*(?i:apt|apartment|suite|ste|unit|floor|fl|#)\.?\s*#?\w+)?"
        r",\s*[A-Za-z]+(?:\s[A-Za-z]+){0,2},?\s*[A-Za-z]{2}\s+\d{5}(?:-\d{4})?(?!\d)",
    ),
    (
        "ADDRESS",
        r"(?:(?:(?![住在于居家址患者的为])[\u4e00-\u9fff]){2,6}?(?:省|自治区))?"
        r"(?:(?:(?![住在于居家址患者的为省])[\u4e00-\u9fff]){2,6}?市)?"
        r"(?:(?:(?![住在于居家址患者的为省市])[\u4e00-\u9fff]){1,6}?(?:区|县))?"
        r"(?:(?:(?![住在于居家址患者的为省市区县])[\u4e00-\u9fff]){1,6}?(?:镇|乡|街道))?"
        r"(?:(?![住在于居家址患者的为省市区县镇乡])[\u4e00-\u9fff\d]){1,10}?(?:路|街|大道|巷|弄|胡同)"
        r"\s*[\d一二三四五六七八九十百零〇\-]+\s*号(?:院)?"
        r"(?:\s*[\d一二三四五六七八九十]+\s*(?:栋|幢|号楼|楼))?(?:\s*[\d一二三四五六七八九十]+\s*单元)?"
        r"(?:\s*\d+\s*(?:室|号))?",
    ),
    (
        "ADDRESS",
        r"(?:(?![住在于居家址患者的为])[\u4e00-\u9fff]){2,6}?(?:省|自治区)"
        r"(?:(?![住在于居家址患者的为省])[\u4e00-\u9fff]){2,6}?市"
        r"(?:(?:(?![住在于居家址患者的为省市])[\u4e00-\u9fff]){1,6}?(?:区|县))?",
    ),
    (
        "ADDRESS",
        r"(?:(?![住在于居家址患者的为省])[\u4e00-\u9fff]){2,6}?市"
        r"(?:(?![住在于居家址患者的为省市])[\u4e00-\u9fff]){1,6}?(?:区|县)",
    ),
    (
        "ADDRESS",
        r"(?<![A-Za-z])(?i:zip(?:\s+code)?|postal\s+code|post\s*code|邮编|邮政编码)\s*[:：]?\s*(?P<v>\d{5,6}"
        r"(?:-\d{4})?)",
    ),
    # names, English
    (
        "NAME",
        r"(?<![A-Za-z])(?i:(?:patient|pt\.?|client)(?:'s)?\s+(?:full\s+)?name|full\s+name|name|surname|"
        r"given\s+name|first\s+name|last\s+name|family\s+name|patient|pt|endoscopist|physician|attending|"
        r"surgeon|doctor|referring(?:\s+(?:physician|doctor|provider|md))?|pathologist|nurse|assistant|"
        r"anesthesiologist|anaesthetist|technician|provider|fellow|resident|signed(?:\s+by)?|"
        r"performed\s+by|dictated\s+by|reviewed\s+by|reported\s+by|verified\s+by|transcribed\s+by|"
        r"next\s+of\s+kin|emergency\s+contact|contact\s+person|guardian|spouse|cc|pcp)"
        r"\s*[:：]\s*(?P<v>" + _NAME_ANY + r"(?:,\s*" + _NAME_ANY + r"(?=\s*(?:$|\n|[,;.(]|\s(?i:MD|DOB|"
        r"MRN|age)\b)))?)",
    ),
    (
        "NAME",
        r"(?<![A-Za-z])(?i:(?:electronically\s+)?signed\s+by|performed\s+by|dictated\s+by|reviewed\s+by|"
        r"reported\s+by|verified\s+by|transcribed\s+by|seen\s+by|referred\s+by|attended\s+by|"
        r"accompanied\s+by|examined\s+by)\s*[:：]?\s*(?P<v>" + _NAME_CAP + ")",
    ),
    ("NAME", r"(?<![A-Za-z])(?i:dr|mr|mrs|ms|mx|prof|mme|mlle)(?:\.\s*|\s+)(?P<v>" + _NAME_ANY + ")"),
    (
        "NAME",
        r"(?<![A-Za-z])(?i:miss|professor|doctor|nurse|sister|madam|sir|patient|pt\.?)\s+(?P<v>" + _NAME_CAP + ")",
    ),
    (
        "NAME",
        r"(?<![A-Za-z])(?P<v>" + _NAME_CAP + r")(?=" + _CRED + r")(?:,?\s+(?:MD|M\.D\.|DO|D\.O\.|RN|PhD|"
        r"Ph\.D\.|NP|PA-C|MBBS)\b)",
    ),
    # names, Chinese
    (
        "NAME",
        r"(?:姓名|患者姓名|病人姓名|受检者|检查者|检查医[师生]|报告医[师生]|审核医[师生]|操作医[师生]|"
        r"记录者|记录员|报告者|审核者|操作者|术者|助手|签名|主治医[师生]|送检医[师生]|申请医[师生]|病理医[师生]|麻醉医[师生]|"
        r"麻醉师|医[师生]|护士|家属|联系人|患者|病人|病员)\s*[:：]\s*(?P<v>" + _ZH_NAME + ")",
    ),
    ("NAME", r"(?:患者|病人|病员|受检者|家属|医[师生]|护士|主任|教授)\s*(?P<v>" + _ZH_NAME_S + ")"),
    (
        "NAME",
        r"(?<![检主责副])(?P<v>(?:" + _SURNAMES2 + r"|[" + _SURNAMES + r"])" + _HAN + r"{0,2}?)"
        r"(?:先生|女士|小姐|医生|医师|主任|教授|护士|护师|老师|同志|大夫|阿姨|师傅)",
    ),
    # a surname and 1-2 characters with no label or title, where only a person fits: after "with / told /
    # handed to / accompanied by" and before "together / accompanied / signed / in person", or at the start of
    # a clause before "accompanied / signed" ("与王伟一同就诊", "已电话告知李娜", "张建国陪同检查")
    (
        "NAME",
        r"(?:与|和|跟|同|由(?!于)|请|经|嘱|通知|告知|转告|交给|交予|联系|家属|陪同人|委托|代理人|授权)\s*"
        + _ZH_BARE_NAME
        + r"(?=一同|一起|共同|陪同|签字|签名|代签|同意|到场|在场|本人|知情|确认|复诊|来院|按时|定期|按期|及时|"
        r"携带|[，,。；;、\s]|$)",
    ),
    (
        "NAME",
        r"(?:^|(?<=[，,。；;：:、\s]))" + _ZH_BARE_NAME + r"(?=陪同|代签|签字|签名确认|到场|在场)",
    ),
    # unlabelled ids
    ("ID", r"(?<![\d.])\d{6,}(?!\d|\.\d)"),
    ("ID", r"(?<![A-Za-z0-9])[A-Z]{1,3}-?\d{5,}(?![A-Za-z0-9])"),
]
# Rules tried only where a word of their list starts (an alternation of hundreds of names, tried at every
# position, would cost most of the time): (kind, pattern, words).
_WORD_RULES: list[tuple[str, str, frozenset[str]]] = [
    (
        "NAME",
        r"(?<![A-Za-z0-9'’\-])(?P<v>(?i:"
        + _GIVEN_RX
        + r")(?:\s+"
        + _INITIAL
        + r"|\s+(?i:"
        + _GIVEN_RX
        + r")(?![A-Za-z'’\-]))?(?:\s+(?:"
        + _PARTICLE
        + r"\s+){0,2}"
        + _WORD_ANY
        + r")?)(?![A-Za-z'’\-])",
        frozenset(_GIVEN),
    ),
]

# Rules tried only when a cheap search finds what they need (a credential, a Chinese street word).
_GATES = {
    r")(?:,?\s+(?:MD|M\.D\.|DO|": re.compile(r"\b(?:MD|M\.D\.|DO|D\.O\.|RN|PhD|Ph\.D\.|NP|PA-C|MBBS)\b"),
    "(?:路|街|大道|巷|弄|胡同)": re.compile("[路街巷弄]|大道|胡同"),
}
_COMPILED = [(kind, re.compile(pat), next((g for k, g in _GATES.items() if k in pat), None)) for kind, pat in _RULES]
_COMPILED_WORDS = [(kind, re.compile(pat), words) for kind, pat, words in _WORD_RULES]
_SURNAME_SET = frozenset(_SURNAMES_EN)
# a listed surname (O'/D' before it, hyphenated parts after it), particles before it, and, in the first
# pattern, the name word (and initial) before those: "olga nakamura", "Keisha O'Neill", "IVANA DE LA CRUZ"
_SURNAME_TAIL = r"(?:[OoDd]['’])?(?P<s>[A-Za-z]+)(?:[-'’][A-Za-z]+)*(?![A-Za-z0-9'’\-])"
_PARTICLES = r"(?:" + _PARTICLE + r"\.?\s+){0,2}"
_SURNAME_WITH_WORD = re.compile(
    r"(?<![A-Za-z0-9'’\-])(?P<w>" + _WORD_ANY + r")(?:\s+" + _INITIAL + r")?\s+" + _PARTICLES + _SURNAME_TAIL
)
_SURNAME_ALONE = re.compile(r"(?<![A-Za-z0-9'’\-])" + _PARTICLES + _SURNAME_TAIL)
_PARTICLE_RX = re.compile(_PARTICLE + r"\.?")


def _case(word: str) -> str:
    return "upper" if word.isupper() else "lower" if word.islower() else "title"


def _surname_span(text: str, pos: int, starts: list[int]) -> tuple[int, int] | None:
    """The span of the name around the listed surname starting at ``pos``: the word before it joins when it is
    written in the same case as the surname and is not an eponym or a particle; particles before it join.
    ``starts``: where the words before ``pos`` start (the candidates, nearest last)."""
    cands = [q for q in starts if pos - q <= 60] + [p for p in (pos - 2, pos) if p >= 0]
    for q in cands:
        m = _SURNAME_WITH_WORD.match(text, q)
        if m is not None and m.start("s") == pos:
            w = m.group("w")
            if _case(w) == _case(m.group("s")) and w.lower() not in _EPONYMS and not _PARTICLE_RX.fullmatch(w):
                return m.start(), m.end()
    for q in cands:
        m = _SURNAME_ALONE.match(text, q)
        if m is not None and m.start("s") == pos:
            return m.start(), m.end()
    return None


_ASCII_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class Replacement:
    """One replaced identifier: ``[orig_start, orig_end)`` became ``[new_start, new_end)``."""

    kind: str
    orig_start: int
    orig_end: int
    new_start: int
    new_end: int


@dataclass(frozen=True)
class Deidentified:
    """The de-identified text and the replacements made."""

    text: str
    replacements: tuple[Replacement, ...]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of the de-identified text to the original text (a span touching a placeholder
        widens to the whole original identifier)."""
        return self._map(start, left=True), self._map(end, left=False)

    def _map(self, pos: int, left: bool) -> int:
        starts = [r.new_start for r in self.replacements]
        i = bisect.bisect_right(starts, pos) - 1
        if i < 0:
            return pos
        r = self.replacements[i]
        if pos >= r.new_end:
            return r.orig_end + (pos - r.new_end)
        if pos == r.new_start:
            return r.orig_start
        return r.orig_start if left else r.orig_end


def deidentify(text: str) -> Deidentified:
    """Replace identifiers in ``text`` with ``[NAME]``, ``[DATE]``, ``[PHONE]``, ``[ID]``, ``[EMAIL]``,
    ``[URL]``, ``[IP]``, ``[ADDRESS]`` and ``[AGE]`` (overlapping finds merge into one placeholder)."""
    spans: list[tuple[int, int, str]] = []
    words = [(w.start(), w.group().lower()) for w in _ASCII_WORD.finditer(text)]
    matches = [
        (kind, rx, m) for kind, rx, gate in _COMPILED if gate is None or gate.search(text) for m in rx.finditer(text)
    ]
    for kind, rx, names in _COMPILED_WORDS:
        matches += [(kind, rx, m) for pos, w in words if w in names and (m := rx.match(text, pos)) is not None]
    for i, (pos, w) in enumerate(words):
        if w in _SURNAME_SET and (span := _surname_span(text, pos, [q for q, _ in words[max(0, i - 4) : i]])):
            spans.append((*span, "NAME"))
    for kind, rx, m in matches:
        s, e = m.span()
        for g in ("v", "v2"):
            if g in rx.groupindex and m.group(g) is not None:
                s, e = m.span(g)
                break
        if e > s and (kind != "PHONE" or sum(c.isdigit() for c in text[s:e]) >= 7):
            spans.append((s, e, kind))
    spans.sort(key=lambda t: (t[0], -(t[1] - t[0])))
    kept: list[tuple[int, int, str]] = []
    for s, e, kind in spans:
        if kept and s < kept[-1][1]:
            if e > kept[-1][1]:  # overlapping identifiers: cover both
                ps, _, pk = kept[-1]
                kept[-1] = (ps, e, pk)
            continue
        kept.append((s, e, kind))
    out: list[str] = []
    reps: list[Replacement] = []
    pos = 0
    new_len = 0
    for s, e, kind in kept:
        out.append(text[pos:s])
        new_len += s - pos
        token = f"[{kind}]"
        reps.append(Replacement(kind, s, e, new_len, new_len + len(token)))
        out.append(token)
        new_len += len(token)
        pos = e
    out.append(text[pos:])
    return Deidentified("".join(out), tuple(reps))
